//! Portability without the hardware: every WGSL module the engine can build, in every variant
//! (each step kernel in each direction, cell, tiling and slot mode), is parsed and validated by
//! naga (the translator inside wgpu) and translated to SPIR-V (Vulkan), MSL (Metal) and HLSL
//! (DX12), so a shader only one backend accepts is caught on a Linux box.

use naga::valid::{Capabilities, ValidationFlags, Validator};
use wgpu_lstm::kernels::{shader_variants, ShaderVariant, SHADER_FILES};

fn validated(v: &ShaderVariant) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(&v.source).unwrap_or_else(|e| {
        panic!(
            "{}: WGSL parse error:\n{}",
            v.name,
            e.emit_to_string(&v.source)
        )
    });
    // Default capabilities: what every WebGPU implementation must support; immediates where
    // the variant reads them.
    let caps = if v.immediates {
        Capabilities::IMMEDIATES
    } else {
        Capabilities::default()
    };
    let info = Validator::new(ValidationFlags::all(), caps)
        .validate(&module)
        .unwrap_or_else(|e| {
            panic!(
                "{}: validation error:\n{}",
                v.name,
                e.emit_to_string(&v.source)
            )
        });
    (module, info)
}

/// The files under `shaders/`, relative to it.
fn shader_files(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = format!("{prefix}{}", entry.file_name().into_string().unwrap());
        if entry.file_type().unwrap().is_dir() {
            shader_files(&entry.path(), &format!("{name}/"), out);
        } else if name.ends_with(".wgsl") {
            out.push(name);
        }
    }
}

#[test]
fn every_shader_file_is_listed() {
    let mut files = Vec::new();
    shader_files(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders")),
        "",
        &mut files,
    );
    files.sort();
    assert_eq!(
        files, SHADER_FILES,
        "shaders/ and kernels::SHADER_FILES differ"
    );
}

#[test]
fn step_variants_cover_every_cell_tiling_and_slot_mode() {
    let all = shader_variants();
    let steps: Vec<_> = all.iter().filter(|v| v.name.starts_with("step ")).collect();
    // 2 directions × 4 pointwise parts (LSTM, GRU, RNN, projection) × 4 tilings × 2 slot
    // modes.
    assert_eq!(steps.len(), 2 * 4 * 4 * 2);
    assert_eq!(
        steps.iter().filter(|v| v.immediates).count(),
        steps.len() / 2
    );
    for v in &steps {
        // Only the walk over K is left as a loop: every fixed loop was unrolled.
        assert!(
            !v.source.lines().any(|l| l.trim() == "// @unroll"),
            "{}: an unexpanded loop",
            v.name
        );
        assert_eq!(v.source.matches("for (").count(), 1, "{}", v.name);
    }
}

#[test]
fn shaders_validate_and_translate_to_every_backend() {
    for v in &shader_variants() {
        let name = v.name.as_str();
        let (module, info) = validated(v);
        assert!(!module.entry_points.is_empty(), "{name} has no entry point");

        naga::back::spv::write_vec(&module, &info, &Default::default(), None)
            .unwrap_or_else(|e| panic!("{name}: SPIR-V: {e}"));

        let msl = naga::back::msl::Options {
            lang_version: (2, 1),
            ..Default::default()
        };
        naga::back::msl::write_string(&module, &info, &msl, &Default::default())
            .unwrap_or_else(|e| panic!("{name}: MSL: {e}"));

        // wgpu's DX12 backend gives immediates a root-constant register; so does this test.
        let hlsl_options = naga::back::hlsl::Options {
            immediates_target: Some(naga::back::hlsl::BindTarget {
                register: 100,
                ..Default::default()
            }),
            ..Default::default()
        };
        let pipeline = naga::back::hlsl::PipelineOptions::default();
        let mut hlsl = String::new();
        naga::back::hlsl::Writer::new(&mut hlsl, &hlsl_options, &pipeline)
            .write(&module, &info, None)
            .unwrap_or_else(|e| panic!("{name}: HLSL: {e}"));
        assert!(
            hlsl.contains("numthreads"),
            "{name}: HLSL has no compute entry point"
        );
    }
}

/// The loops an entry point runs (its own and those of the functions it calls).
fn loops_in(module: &naga::Module, block: &naga::Block) -> usize {
    use naga::Statement as S;
    block
        .iter()
        .map(|statement| match statement {
            S::Loop {
                body, continuing, ..
            } => 1 + loops_in(module, body) + loops_in(module, continuing),
            S::Block(b) => loops_in(module, b),
            S::If { accept, reject, .. } => loops_in(module, accept) + loops_in(module, reject),
            S::Switch { cases, .. } => cases.iter().map(|c| loops_in(module, &c.body)).sum(),
            S::Call { function, .. } => loops_in(module, &module.functions[*function].body),
            _ => 0,
        })
        .sum()
}

/// llvmpipe stops every loop of an invocation once it has made 65,535 trips in all, which
/// silently gives wrong results. Every fixed loop is unrolled when the source is generated, so
/// the loops left are the walks whose trips the host bounds: each is listed here with the
/// function that models its trips (tested against kernels::LOOP_BUDGET in the unit tests, and
/// refusing sizes beyond it with Error::Limit). A new loop fails this test until it is
/// modelled too.
#[test]
fn every_loop_left_has_a_trip_model() {
    let expected: &[(&str, &str, usize)] = &[
        ("gemm", "gemm", 1),             // the chunk of K: gemm::loop_trips
        ("gemm", "gemm_vec4", 1),        // the same
        ("gemm", "sum_splits", 1),       // the chunks
        ("column_sum", "column_sum", 1), // a chunk's rows / 4: column_sum::loop_trips
        ("column_sum", "sum_splits", 1), // the chunks
        ("reduce", "sum_squares", 1),    // len / (1,024 · 256): 2,048 at 2^29 values
        ("reduce", "finish_norm", 1),    // 1,024 partials / 256
        ("reduce", "scale", 0),
        ("reduce", "row_norms", 1), // a row / 256, checked in reduce::encode_row_norms
        ("sequence", "copy_sequence", 0),
        ("optim", "optimizer_step", 0),
        ("loss", "cross_entropy", 4), // the classes / 64, at most 3 walks: loss::loop_trips
        ("loss", "squared_error", 0),
        ("loss", "mean_partials", 1), // a chunk's 64 rows
        ("loss", "mean_loss", 1),     // the chunks / 256
        ("one_hot", "one_hot", 0),
        ("step", "step_forward", 1),  // K / K_TILE: step::loop_trips
        ("step", "step_backward", 1), // the same
        // The steps, and per phase the staging of its source (K / threads), plus one per
        // phase past the first: step::sequence::Shape::trips_per_step.
        ("sequence", "sequence_forward", 2),
        ("sequence", "sequence_backward", 3), // and dh_0's staging
    ];
    let mut seen = 0;
    for v in &shader_variants() {
        let (module, _) = validated(v);
        let family = v.name.split(' ').next().unwrap();
        for entry in &module.entry_points {
            let want = expected
                .iter()
                .find(|(f, e, _)| *f == family && *e == entry.name)
                .unwrap_or_else(|| panic!("{} {}: no loop model", v.name, entry.name));
            let phases = v.name.matches(" + ").count() + 1;
            let staging = if family == "sequence" { phases - 1 } else { 0 };
            assert_eq!(
                loops_in(&module, &entry.function.body),
                want.2 + staging,
                "{} {}: loops without a trip model",
                v.name,
                entry.name
            );
            seen += 1;
        }
    }
    assert!(seen >= expected.len());
}
