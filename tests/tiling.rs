//! Every tiling of the recurrent step kernels (wide, narrow, split, wide-split) against the f64
//! reference, whatever batch size it would be chosen for: forward and backward, both cells,
//! several layers, both directions, variable lengths, and sizes that fill no tile (H below,
//! between and above the tile widths; batches that leave a partial batch tile).
//!
//! Each test opens its own device, since the tiling is a setting of the device, and forces
//! the step kernels (auto may take the sequence kernel at these sizes).

mod common;

use common::stack::{check_on, Case};
use wgpu_lstm::{Cell, Gpu, LstmConfig, Nonlinearity, Recurrence, StepTiling};

fn check_tiling(tiling: StepTiling) {
    let gpu = Gpu::new().unwrap_or_else(|e| panic!("these tests need a GPU adapter: {e}"));
    gpu.set_step_tiling(tiling);
    gpu.set_recurrence(Recurrence::Step);
    assert_eq!(gpu.step_tiling(), tiling);
    let cases = [
        // The smallest: one unit, one row, one step (H < K_SPLIT: most lanes have no k).
        (LstmConfig::new(3, 1), 1, 1, None),
        // H = 37: no multiple of any tile; two layers, both directions, lengths.
        (
            LstmConfig::new(5, 37)
                .with_layers(2)
                .with_bidirectional(true),
            9,
            3,
            Some(vec![9, 2, 5]),
        ),
        // A full 4-row tile and H = 70 > 64 (two narrow workgroups).
        (LstmConfig::new(7, 70), 12, 4, None),
        // B = 6: a partial second batch tile in the narrow and split tilings.
        (LstmConfig::new(4, 20), 5, 6, Some(vec![5, 1, 3, 5, 4, 2])),
        // The vanilla RNN's kernels.
        (
            LstmConfig::new(3, 19)
                .with_cell(Cell::Rnn)
                .with_bidirectional(true),
            7,
            2,
            Some(vec![7, 3]),
        ),
        (LstmConfig::new(6, 41).with_cell(Cell::Rnn), 4, 5, None),
        // B = 18: two 16-row tiles of the wide tilings, the second partial.
        (LstmConfig::new(4, 20), 3, 18, None),
        // The GRU: 3 gates in the vec4 product, its own input-side gradients.
        (
            LstmConfig::new(5, 37)
                .with_cell(Cell::Gru)
                .with_layers(2)
                .with_bidirectional(true),
            9,
            3,
            Some(vec![9, 2, 5]),
        ),
        (LstmConfig::new(3, 70).with_cell(Cell::Gru), 4, 6, None),
        // The relu RNN.
        (
            LstmConfig::new(4, 23)
                .with_cell(Cell::Rnn)
                .with_nonlinearity(Nonlinearity::Relu)
                .with_bidirectional(true),
            6,
            5,
            Some(vec![6, 1, 4, 6, 2]),
        ),
        // Projections: two dispatches per step each way, h of width P = 7 < H = 19.
        (
            LstmConfig::new(5, 19)
                .with_proj_size(7)
                .with_layers(2)
                .with_bidirectional(true),
            8,
            3,
            Some(vec![8, 3, 6]),
        ),
        (LstmConfig::new(3, 70).with_proj_size(1), 5, 18, None),
    ];
    for (seed, (config, steps, batch, lengths)) in cases.into_iter().enumerate() {
        let case = Case {
            config,
            steps,
            batch,
            lengths,
        };
        check_on(&gpu, &case, 900 + seed as u64);
    }
}

#[test]
fn wide_tiling_matches_the_reference() {
    check_tiling(StepTiling::Wide);
}

#[test]
fn narrow_tiling_matches_the_reference() {
    check_tiling(StepTiling::Narrow);
}

#[test]
fn split_tiling_matches_the_reference() {
    check_tiling(StepTiling::Split);
}

#[test]
fn wide_split_tiling_matches_the_reference() {
    check_tiling(StepTiling::WideSplit);
}

#[test]
fn long_sequence_at_batch_one_in_the_split_tiling() {
    // Many steps: an error in the lane sums would grow through the recurrence.
    let gpu = Gpu::new().unwrap_or_else(|e| panic!("these tests need a GPU adapter: {e}"));
    gpu.set_step_tiling(StepTiling::Split);
    gpu.set_recurrence(Recurrence::Step);
    let case = Case {
        config: LstmConfig::new(8, 24),
        steps: 150,
        batch: 1,
        lengths: None,
    };
    check_on(&gpu, &case, 950);
}

#[test]
fn counted_dispatches_meet_the_budget() {
    // Counted as recorded, on a device of its own: 1 dispatch per step forward and per step
    // backward, per layer and direction, plus the O(1) ones of DispatchCounts.
    use wgpu_lstm::{DispatchCounts, Lstm, OutputGrads, Tensor};
    let gpu = Gpu::new().unwrap_or_else(|e| panic!("these tests need a GPU adapter: {e}"));
    gpu.set_recurrence(Recurrence::Step);
    let (steps, batch) = (9, 3);
    let cells = [
        LstmConfig::new(5, 6),
        LstmConfig::new(5, 6).with_cell(Cell::Gru),
        LstmConfig::new(5, 6).with_cell(Cell::Rnn),
        LstmConfig::new(5, 6).with_proj_size(3),
        LstmConfig::new(5, 6).with_bias(false),
    ];
    for (cell, (layers, bidirectional)) in cells
        .into_iter()
        .flat_map(|c| [(c, (1, false)), (c, (2, true))])
    {
        let config = cell.with_layers(layers).with_bidirectional(bidirectional);
        let lstm = Lstm::new(&gpu, config).unwrap();
        let x =
            Tensor::from_slice(&gpu, &[steps, batch, 5], &vec![0.1; steps * batch * 5]).unwrap();
        let per_model = layers * config.directions();
        let want = DispatchCounts::for_config(&config, steps);
        assert_eq!(
            lstm.dispatch_counts(steps, batch).unwrap(),
            (Recurrence::Step, want)
        );
        // The budget per layer and direction, as the README states it for each cell.
        let (forward_budget, backward_budget) = match (config.cell, config.proj_size, config.bias) {
            (_, 0, false) => (steps + 1, steps + 5),
            (Cell::Gru, _, _) => (steps + 1, steps + 7),
            (_, 0, true) => (steps + 1, steps + 6),
            (_, _, _) => (2 * steps + 1, 2 * steps + 7),
        };
        assert_eq!(
            (want.forward, want.backward),
            (forward_budget, backward_budget),
            "{config:?}"
        );
        let count = |f: &mut dyn FnMut()| {
            let before = gpu.dispatch_count();
            f();
            (gpu.dispatch_count() - before) as usize
        };
        let mut out = None;
        let forward = count(&mut || out = Some(lstm.forward_train(&x, None, None).unwrap()));
        assert_eq!(forward, per_model * want.forward, "{config:?}");
        let cache = out.unwrap().cache.unwrap();
        let grads = OutputGrads::default();
        let backward = count(&mut || {
            lstm.backward(&cache, &grads, false).unwrap();
        });
        assert_eq!(backward, per_model * want.backward, "{config:?}");
        let clip = count(&mut || {
            lstm.params().clip_grad_norm(1.0, false).unwrap();
        });
        assert_eq!(clip, want.clip);
    }
}
