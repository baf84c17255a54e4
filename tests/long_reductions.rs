//! Reductions longer than llvmpipe's loop limit (65,535 trips per invocation, after which it
//! silently stops every loop): weight-gradient GEMMs over T·B = 65,536 and 300,000 rows, an
//! input projection over I = 60,000 features, bias gradients summed over 262,144 rows. Each
//! was wrong on lavapipe before the reductions were split (errors of order 1); each is now
//! compared with the f64 reference.

mod common;

use common::stack::{check_on, check_within, Case};
use common::*;
use wgpu_lstm::{Lstm, LstmConfig, OutputGrads};

#[test]
fn weight_gradients_over_65536_rows() {
    // The example: check --seq-len 64 --batch 1024 --input 8 --hidden 16.
    let case = Case {
        config: LstmConfig::new(8, 16),
        steps: 64,
        batch: 1024,
        lengths: None,
    };
    check_on(gpu(), &case, 71);
}

#[test]
fn weight_gradients_over_300000_rows() {
    let case = Case {
        config: LstmConfig::new(3, 2),
        steps: 300,
        batch: 1000,
        lengths: None,
    };
    check_on(gpu(), &case, 72);
}

#[test]
fn input_projection_over_60000_features() {
    // Each pre-activation sums 60,000 products: f32 rounding grows like √K, about 15 times
    // what the default tolerances were set for (K ≤ 257, tests/forward.rs), so they are
    // widened by that factor. Before the split the error was 0.76.
    let case = Case {
        config: LstmConfig::new(60_000, 4),
        steps: 2,
        batch: 2,
        lengths: None,
    };
    check_within(gpu(), &case, 73, (1.5e-4, 1.5e-3));
}

#[test]
fn bias_gradients_sum_262144_rows_and_more() {
    // Against the reference: T·B = 262,144 rows, where the unsplit sum (rows / 4 trips per
    // invocation) reached llvmpipe's limit.
    let case = Case {
        config: LstmConfig::new(1, 1),
        steps: 256,
        batch: 1024,
        lengths: None,
    };
    check_on(gpu(), &case, 74);
    // And exactly, with every weight zero and one step: every gate sees 0, so i = f = o = 1/2
    // and g = 0, c = 0; dy = 1 gives dc = dy · o · (1 - tanh² c) = 1/2 and the candidate's
    // gradient dc · i · (1 - g²) = 1/4 on every row, the other gates' zero. Their sum over the
    // rows is a multiple of 1/4 below 2^22: exact in f32, whatever the order of the additions.
    let lstm = Lstm::new(gpu(), LstmConfig::new(1, 1)).unwrap();
    for name in lstm.params().names() {
        let len = lstm.params().view(&name).unwrap().len();
        lstm.params().set(&name, &vec![0.0; len]).unwrap();
    }
    for rows in [262_144, 300_000] {
        let x = upload(&[1, rows, 1], &vec![0.0; rows]);
        let out = lstm.forward_train(&x, None, None).unwrap();
        let dy = upload(&[1, rows, 1], &vec![1.0; rows]);
        lstm.backward(out.cache.as_ref().unwrap(), &OutputGrads::dy(&dy), false)
            .unwrap();
        let want = vec![0.0, 0.0, rows as f32 / 4.0, 0.0];
        assert_eq!(
            lstm.params().grad("bias_ih_l0").unwrap(),
            want,
            "{rows} rows: i, f, g, o"
        );
        assert_eq!(
            lstm.params().grad("bias_hh_l0").unwrap(),
            want,
            "{rows} rows"
        );
    }
}
