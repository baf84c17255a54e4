//! Fuzzes everything that reads user files before any GPU work: the safetensors parser, the
//! state-dict configuration inference, the tensor accessors the `infer` input reader uses, and
//! the checkpoint metadata parser. None of it may panic, whatever the bytes.
//!
//!     RUSTC_BOOTSTRAP=1 cargo fuzz run safetensors_loader fuzz/corpus tests/fuzz_regressions

#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_lstm::io::parse_tensors_with_metadata;
use wgpu_lstm::train::Checkpoint;
use wgpu_lstm::LstmConfig;

fuzz_target!(|data: &[u8]| {
    let Ok((tensors, meta)) = parse_tensors_with_metadata(data, "fuzz") else { return };
    let _ = LstmConfig::from_state_dict(&tensors);
    for (name, t) in &tensors {
        let _ = t.as_f32(name);
        let _ = t.as_indices(name);
        let _ = t.to_f64();
    }
    let _ = Checkpoint::from_parts(tensors.clone(), &meta, Some("abc"), "fuzz");
    let _ = Checkpoint::from_parts(tensors, &meta, None, "fuzz");
});
