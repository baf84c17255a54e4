//! Criterion benchmarks over the same code as `wgpu-lstm bench`: inference and a training step
//! (forward, backward, clip) at a small size that a software rasteriser runs in milliseconds,
//! and at the first size when `WGPU_LSTM_BENCH_FULL=1` (for a real GPU).
//!
//!     cargo bench --bench lstm

use criterion::{criterion_group, criterion_main, Criterion};
use wgpu_lstm::bench::{BenchSize, SMOKE_SIZES, STANDARD_SIZES};
use wgpu_lstm::{Gpu, Lstm, LstmConfig, OutputGrads, Tensor};

fn sizes() -> Vec<BenchSize> {
    if std::env::var("WGPU_LSTM_BENCH_FULL").as_deref() == Ok("1") {
        vec![STANDARD_SIZES[0], STANDARD_SIZES[2]]
    } else {
        vec![SMOKE_SIZES[1]]
    }
}

fn lstm(c: &mut Criterion) {
    let gpu = Gpu::new().expect("the benchmarks need a GPU adapter");
    for size in sizes() {
        let (t, b) = (size.steps, size.batch);
        let model = Lstm::new(&gpu, LstmConfig::new(size.input, size.hidden)).unwrap();
        let x =
            Tensor::from_slice(&gpu, &[t, b, size.input], &vec![0.5; t * b * size.input]).unwrap();
        let dy = Tensor::from_slice(&gpu, &[t, b, size.hidden], &vec![0.1; t * b * size.hidden])
            .unwrap();
        c.bench_function(&format!("inference {size}"), |bench| {
            bench.iter(|| {
                model.forward(&x, None, None).unwrap();
                gpu.wait().unwrap();
            })
        });
        c.bench_function(&format!("training {size}"), |bench| {
            bench.iter(|| {
                let out = model.forward_train(&x, None, None).unwrap();
                let grads = OutputGrads {
                    dy: Some(&dy),
                    ..Default::default()
                };
                model
                    .backward(out.cache.as_ref().unwrap(), &grads, false)
                    .unwrap();
                model.params().clip_grad_norm(1.0, false).unwrap();
                gpu.wait().unwrap();
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = lstm
}
criterion_main!(benches);
