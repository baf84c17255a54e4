//! One module per shader family: its pipelines (from the device's cache), bindings, dispatch
//! sizes and one launcher function per operation. Kernels know nothing of models; they take
//! buffers, element offsets and sizes.
//!
//! The constants a shader shares with the host (flags, tile sizes) are defined once, in Rust,
//! and prepended to the WGSL source as `const` declarations ([`with_constants`]).

pub mod cell;
pub(crate) mod column_sum;
pub(crate) mod gemm;
pub(crate) mod loss;
pub(crate) mod optim;
pub(crate) mod reduce;
pub(crate) mod sequence;
pub mod step;

pub use cell::{Cell, Nonlinearity};
pub use step::{Recurrence, StepTiling, Tiling};

/// `const NAME: u32 = VALUE;` for each constant, then `body`: how a shader gets the values it
/// shares with the host.
pub fn with_constants(constants: &[(&str, u32)], body: &str) -> String {
    let mut source = String::from("// Constants shared with the host (generated in Rust).\n");
    for (name, value) in constants {
        source += &format!("const {name}: u32 = {value}u;\n");
    }
    source + "\n" + body
}

/// [`with_constants`], then every loop marked `// @unroll` expanded (see
/// [`step::unroll`](step)): how the shaders get their constants and their fixed loops
/// unrolled whatever the driver's compiler does.
pub(crate) fn generated(constants: &[(&str, u32)], body: &str) -> String {
    let known = constants.iter().copied().collect();
    with_constants(constants, &step::unroll(body, &known))
}

/// One WGSL module the engine can build.
#[derive(Debug, Clone)]
pub struct ShaderVariant {
    /// A name for messages, e.g. `gemm` or `step forward (lstm, narrow, immediates)`.
    pub name: String,
    /// The complete source as the device receives it.
    pub source: String,
    /// Whether it reads immediate data (needs the `IMMEDIATES` capability).
    pub immediates: bool,
}

/// Every WGSL module the engine can build, in every variant: the naga test parses, validates
/// and translates exactly these.
pub fn shader_variants() -> Vec<ShaderVariant> {
    let plain = |name: &str, source: String| ShaderVariant {
        name: name.to_string(),
        source,
        immediates: false,
    };
    let mut out = vec![
        plain("gemm", gemm::source(false)),
        plain("gemm vec4", gemm::source(true)),
        plain("column_sum", column_sum::source()),
        plain("reduce", reduce::source()),
        plain("sequence", sequence::source()),
        plain("optim", optim::source()),
        plain("loss", loss::source()),
        plain("one_hot", loss::one_hot_source()),
    ];
    out.extend(step::variants());
    out
}

/// The WGSL files under `shaders/` that the variants are built from (the test checks that
/// none is left out).
pub const SHADER_FILES: &[&str] = &[
    "backward_cells.wgsl",
    "cells/gru_backward.wgsl",
    "cells/gru_forward.wgsl",
    "cells/lstm_backward.wgsl",
    "cells/lstm_forward.wgsl",
    "cells/projection_backward.wgsl",
    "cells/projection_forward.wgsl",
    "cells/rnn_backward.wgsl",
    "cells/rnn_forward.wgsl",
    "column_sum.wgsl",
    "forward_cells.wgsl",
    "gemm.wgsl",
    "loss.wgsl",
    "one_hot.wgsl",
    "optim.wgsl",
    "reduce.wgsl",
    "sequence.wgsl",
    "sequence_backward.wgsl",
    "sequence_forward.wgsl",
    "sequence_phase_backward.wgsl",
    "sequence_phase_forward.wgsl",
    "step_backward.wgsl",
    "step_forward.wgsl",
    "step_forward_scalar.wgsl",
    "step_forward_vec4.wgsl",
    "step_lanes.wgsl",
    "step_prelude.wgsl",
    "step_staging.wgsl",
];

/// The most loop trips any invocation of an engine kernel may make, with a margin below the
/// 65,535 after which llvmpipe (lavapipe, the software Vulkan driver) silently stops every
/// loop of the invocation: the kernels split their work (or refuse, with `Error::Limit`)
/// to stay under it. A long serial loop is slow on GPUs too.
pub const LOOP_BUDGET: u64 = 32_768;
