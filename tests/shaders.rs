//! Portability without the hardware: every WGSL module the engine compiles is parsed and
//! validated by naga (the translator inside wgpu) and translated to SPIR-V (Vulkan), MSL (Metal)
//! and HLSL (DX12), so a shader only one backend accepts is caught on a Linux box.

use naga::valid::{Capabilities, ValidationFlags, Validator};
use wgpu_lstm::kernels::SHADER_SOURCES;

fn validated_with(
    name: &str,
    source: &str,
    caps: Capabilities,
) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{name}: WGSL parse error:\n{}", e.emit_to_string(source)));
    // Default capabilities: what every WebGPU implementation must support.
    let info = Validator::new(ValidationFlags::all(), caps)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: validation error:\n{}", e.emit_to_string(source)));
    (module, info)
}

#[test]
fn every_shader_is_listed() {
    let files: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".wgsl") && f != "activations.wgsl") // a prelude, not a module
        .collect();
    for f in &files {
        assert!(
            SHADER_SOURCES.iter().any(|(n, _)| n == f),
            "{f} is not in SHADER_SOURCES"
        );
    }
    assert_eq!(files.len(), SHADER_SOURCES.len());
}

/// Every module, plus the immediate-data variant of the step kernels (used where the device has
/// immediates), which needs that capability.
fn variants() -> Vec<(String, String, Capabilities)> {
    let mut out = Vec::new();
    for (name, source) in SHADER_SOURCES {
        out.push((
            name.to_string(),
            source.to_string(),
            Capabilities::default(),
        ));
        if source.contains(wgpu_lstm::kernels::SLOT_UNIFORM) {
            use wgpu_lstm::kernels::{with_immediate_slot, Tiling};
            assert!(
                source.contains(&Tiling::WIDE.constants()),
                "{name}: tile constants not found"
            );
            let immediate = with_immediate_slot(source);
            let caps = Capabilities::IMMEDIATES;
            let tilings = [
                ("narrow", Tiling::NARROW),
                ("split forward", Tiling::SPLIT_FORWARD),
                ("split backward", Tiling::SPLIT_BACKWARD),
                ("wide split", Tiling::WIDE_SPLIT),
            ];
            for (tiling_name, tiling) in tilings {
                out.push((
                    format!("{name} ({tiling_name})"),
                    tiling.apply(source),
                    Capabilities::default(),
                ));
                out.push((
                    format!("{name} ({tiling_name}, immediates)"),
                    tiling.apply(&immediate),
                    caps,
                ));
            }
            out.push((format!("{name} (immediates)"), immediate, caps));
        }
    }
    out
}

#[test]
fn shaders_validate_and_translate_to_every_backend() {
    let all = variants();
    assert_eq!(
        all.iter().filter(|v| v.0.ends_with("immediates)")).count(),
        20
    );
    for (name, source, caps) in &all {
        let (name, source) = (name.as_str(), source.as_str());
        let (module, info) = validated_with(name, source, *caps);
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
