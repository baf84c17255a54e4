//! The WGSL of a step or sequence kernel, assembled from the template of its direction, the
//! cells' helpers of that direction, the pointwise parts and the constants of its tiling, with
//! every loop marked `// @unroll` expanded (a fixed number of copies, whatever the driver's
//! compiler would do: llvmpipe counts every loop trip of an invocation against a limit of
//! 65,535).

use super::flags;
use super::sequence::Shape;
use super::{Direction, Pointwise, Tiling};
use std::collections::HashMap;

const PRELUDE: &str = include_str!("../../../shaders/step_prelude.wgsl");
const STAGING: &str = include_str!("../../../shaders/step_staging.wgsl");
const FORWARD_CELLS: &str = include_str!("../../../shaders/forward_cells.wgsl");
const BACKWARD_CELLS: &str = include_str!("../../../shaders/backward_cells.wgsl");
const SEQUENCE_FORWARD: &str = include_str!("../../../shaders/sequence_forward.wgsl");
const SEQUENCE_BACKWARD: &str = include_str!("../../../shaders/sequence_backward.wgsl");
const SEQUENCE_PHASE_FORWARD: &str = include_str!("../../../shaders/sequence_phase_forward.wgsl");
const SEQUENCE_PHASE_BACKWARD: &str = include_str!("../../../shaders/sequence_phase_backward.wgsl");
const LANES: &str = include_str!("../../../shaders/step_lanes.wgsl");
const FORWARD: &str = include_str!("../../../shaders/step_forward.wgsl");
const FORWARD_VEC4: &str = include_str!("../../../shaders/step_forward_vec4.wgsl");
const FORWARD_SCALAR: &str = include_str!("../../../shaders/step_forward_scalar.wgsl");
const BACKWARD: &str = include_str!("../../../shaders/step_backward.wgsl");

/// Without lane splits the sum over lanes is the value itself (and needs no workgroup memory).
const NO_LANES: &str = "fn sum_lanes(li: u32, v: vec4<f32>) -> vec4<f32> {\n    return v;\n}\n";

/// The declaration of the step kernels' dims (the sequence kernels declare theirs per phase).
const DIMS_UNIFORM: &str = "@group(0) @binding(0) var<uniform> dims: Dims;";

/// The declaration of the per-step slot: a uniform at a dynamic offset (group 1), or immediates.
pub(crate) const SLOT_UNIFORM: &str = "@group(1) @binding(0) var<uniform> slot: StepSlot;";
const SLOT_IMMEDIATE: &str = "var<immediate> slot: StepSlot;";

/// The constants of one step kernel: its tiling, its cell's gates, the loop counts the
/// template unrolls, and every flag.
fn constants(pointwise: Pointwise, tiling: Tiling) -> Vec<(&'static str, u32)> {
    let threads = tiling.threads();
    let rows_tile = tiling.batch_tile / 4 * tiling.k_tile;
    let w_tile = tiling.units * tiling.k_tile;
    let mut c = vec![
        ("UNITS", tiling.units),
        ("BATCH_TILE", tiling.batch_tile),
        ("K_TILE", tiling.k_tile),
        ("K_SPLIT", tiling.k_split),
        ("THREADS", threads),
        ("GATES", pointwise.gates()),
        ("LANE_LEVELS", tiling.k_split.trailing_zeros() as usize),
        ("KK_ITERS", tiling.k_tile / tiling.k_split),
        ("W_STAGE_ITERS", w_tile.div_ceil(threads)),
    ];
    c.push(("SRC_STAGE_ITERS", rows_tile.div_ceil(threads)));
    let mut out: Vec<(&'static str, u32)> = c.into_iter().map(|(n, v)| (n, v as u32)).collect();
    out.extend_from_slice(&flags::ALL);
    out
}

/// The complete source of one step kernel.
pub(crate) fn source(
    direction: Direction,
    pointwise: Pointwise,
    tiling: Tiling,
    immediates: bool,
) -> String {
    let constants = constants(pointwise, tiling);
    let slot = if immediates {
        SLOT_IMMEDIATE
    } else {
        SLOT_UNIFORM
    };
    let lanes = if tiling.k_split > 1 { LANES } else { NO_LANES };
    let (cells, template, product, cell) = match direction {
        Direction::Forward => (
            FORWARD_CELLS,
            FORWARD,
            if pointwise.gates() > 1 {
                FORWARD_VEC4
            } else {
                FORWARD_SCALAR
            },
            pointwise.forward_wgsl(),
        ),
        Direction::Backward => (BACKWARD_CELLS, BACKWARD, "", pointwise.backward_wgsl()),
    };
    let body = format!(
        "// The step slot and dims (kernels/step/generate.rs).\n{slot}\n{DIMS_UNIFORM}\n\n{PRELUDE}\n{STAGING}\n{lanes}\n{cells}\n{template}\n{product}\n{cell}"
    );
    super::super::generated(&constants, &body)
}

/// The complete source of the sequence kernel of `shape`: the template of its direction, one
/// copy of the phase part per phase with that phase's pointwise part, and the functions that
/// run them in turn.
pub(crate) fn sequence_source(shape: &Shape) -> String {
    let threads = shape.threads();
    let max_k = shape.phases.iter().map(|p| p.k_size).max().unwrap_or(1);
    let mut constants: Vec<(String, u32)> = vec![
        ("PHASES".into(), shape.phases.len() as u32),
        ("SEQ_THREADS".into(), threads),
        ("MAX_K".into(), max_k),
    ];
    let (cells, template, phase_part, entry) = match shape.direction {
        Direction::Forward => (
            FORWARD_CELLS,
            SEQUENCE_FORWARD,
            SEQUENCE_PHASE_FORWARD,
            "fn forward_unit(",
        ),
        Direction::Backward => (
            BACKWARD_CELLS,
            SEQUENCE_BACKWARD,
            SEQUENCE_PHASE_BACKWARD,
            "fn backward_unit(",
        ),
    };
    let mut parts = String::new();
    let (mut load, mut run) = (String::new(), String::new());
    for (i, phase) in shape.phases.iter().enumerate() {
        constants.push((format!("K{i}"), phase.k_size));
        constants.push((format!("SLOTS{i}"), phase.units.div_ceil(threads)));
        constants.push((format!("GATES{i}"), phase.pointwise.gates() as u32));
        let wgsl = match shape.direction {
            Direction::Forward => phase.pointwise.forward_wgsl(),
            Direction::Backward => phase.pointwise.backward_wgsl(),
        };
        parts += &phase_part.replace("{p}", &i.to_string());
        parts += &wgsl.replace(entry, &format!("fn phase{i}_unit("));
        load += &format!("    load_weights{i}(li);\n");
        run +=
            &format!("    run_phase{i}(li, st);\n    storageBarrier();\n    workgroupBarrier();\n");
    }
    parts += &format!(
        "\n// Every phase in turn (kernels/step/generate.rs).\nfn load_weights(li: u32) {{\n{load}}}\n\nfn run_step(li: u32, st: Step) {{\n{run}}}\n"
    );
    let mut constants: Vec<(&str, u32)> = constants.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    constants.extend_from_slice(&flags::ALL);
    let body = format!("{PRELUDE}\n{cells}\n{template}\n{parts}");
    super::super::generated(&constants, &body)
}

/// Expands every `for (var i = 0u; i < N; i++) { … }` that follows a line `// @unroll` into N
/// blocks `{ let i = 0u; … }`, …, inner marked loops first. N is a literal (`4u`) or one of
/// `constants`. The bodies may not `break`, `continue` or `return`.
pub(crate) fn unroll(source: &str, constants: &HashMap<&str, u32>) -> String {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = String::with_capacity(source.len() * 2);
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "// @unroll" {
            out.push_str(lines[i]);
            out.push('\n');
            i += 1;
            continue;
        }
        let head = lines.get(i + 1).copied().unwrap_or_default();
        let (var, count) = loop_head(head, constants)
            .unwrap_or_else(|| panic!("`// @unroll` before a loop of unknown form: {head:?}"));
        let end = block_end(&lines, i + 1);
        let body = unroll(&lines[i + 2..end].join("\n"), constants);
        for word in ["break", "continue", "return"] {
            assert!(
                !body
                    .split(|c: char| !c.is_alphanumeric() && c != '_')
                    .any(|w| w == word),
                "an unrolled loop's body may not `{word}`: {head:?}"
            );
        }
        let indent = &head[..head.len() - head.trim_start().len()];
        for k in 0..count {
            out.push_str(&format!(
                "{indent}{{\n{indent}    let {var} = {k}u;\n{body}{indent}}}\n"
            ));
        }
        i = end + 1;
    }
    out
}

/// The variable and trip count of `for (var v = 0u; v < N; v++) {`.
fn loop_head(line: &str, constants: &HashMap<&str, u32>) -> Option<(String, u32)> {
    let rest = line.trim().strip_prefix("for (var ")?;
    let (var, rest) = rest.split_once(" = 0u; ")?;
    let rest = rest.strip_prefix(var)?.strip_prefix(" < ")?;
    let (bound, rest) = rest.split_once("; ")?;
    if rest != format!("{var}++) {{") {
        return None;
    }
    let count = match bound.strip_suffix('u').and_then(|n| n.parse().ok()) {
        Some(n) => n,
        None => *constants.get(bound)?,
    };
    Some((var.to_string(), count))
}

/// The index of the line that closes the block opened on line `open`.
fn block_end(lines: &[&str], open: usize) -> usize {
    let mut depth = 0i32;
    for (i, line) in lines.iter().enumerate().skip(open) {
        let code = line.split("//").next().unwrap_or_default();
        depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
        if depth == 0 {
            return i;
        }
    }
    panic!("unclosed block after line {open}: {:?}", lines[open]);
}

/// Where the template's loops are: the only loops left in a generated step kernel are the
/// walks over K (one per entry point), so an invocation makes `ceil(K / K_TILE) + 1` trips.
pub(crate) fn loop_trips(k_size: usize, tiling: Tiling) -> u64 {
    k_size.div_ceil(tiling.k_tile) as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unroll_expands_marked_loops_inner_first() {
        let src = "a\n// @unroll\nfor (var i = 0u; i < N; i++) {\n    // @unroll\n    for (var q = 0u; q < 2u; q++) {\n        x[i][q] = 1;\n    }\n}\nb\n";
        let out = unroll(src, &[("N", 2)].into_iter().collect());
        assert_eq!(out.matches("x[i][q] = 1;").count(), 4, "{out}");
        assert!(
            out.contains("let i = 1u;") && out.contains("let q = 1u;"),
            "{out}"
        );
        assert!(!out.contains("for ("), "{out}");
        assert!(out.starts_with("a\n") && out.ends_with("b\n"), "{out}");
    }

    /// The largest recurrent product a binding holds: W_hh of 4H × H ≤ 2^29 f32 (H = 11,585),
    /// walked over K = 4H by the backward kernels: under the loop budget in every tiling.
    #[test]
    fn an_invocation_stays_under_the_loop_budget() {
        use super::super::{StepTiling, Tiling};
        for choice in StepTiling::ALL {
            for direction in [Direction::Forward, Direction::Backward] {
                let tiling = Tiling::of(choice, direction);
                let trips = loop_trips(4 * 11_585, tiling);
                assert!(trips <= crate::kernels::LOOP_BUDGET, "{tiling:?}: {trips}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "may not `break`")]
    fn unroll_refuses_a_body_that_breaks() {
        unroll(
            "// @unroll\nfor (var i = 0u; i < 2u; i++) {\n    break;\n}\n",
            &HashMap::new(),
        );
    }
}
