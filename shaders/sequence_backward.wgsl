// The backward sequence template: the steps of one chunk of a layer and direction in one
// dispatch, in the reverse of the forward processing order, for every cell; the mirror of
// sequence_forward.wgsl, with each invocation's columns of W in registers. Per step and phase
// (with proj_size the projection's, then the cell's), in sequence_phase_backward.wgsl:
//
//     stage the source row; rec = Σ_k src[k] · W[k, j] for each unit j it owns;
//     phase{p}_unit(…, rec)                 (the cells' pointwise parts, renamed)
//
// then storageBarrier and workgroupBarrier. The last chunk ends with the dh_0 phase:
// dh_0 = dG_first · W_hh + the dh carry, with phase 0's weights.

struct Chunk {
    first: u32,   // the first step of the chunk, in backward processing order
    count: u32,   // steps in the chunk
    h0: u32,      // 1: after the steps, write dh_0
    _pad0: u32,
}

// What every phase of one step shares.
struct Step {
    t: u32,
    b: u32,
    first: bool,
    t_prev: u32,
    has_next: bool,
    t_next: u32,
    in_sequence: bool,
}

@group(0) @binding(0) var<uniform> phases: array<Dims, PHASES>;
@group(0) @binding(9) var<uniform> chunk: Chunk;
// The dims of the phase running now (the cells' helpers read `dims`).
var<private> dims: Dims;

// The source row of this step and phase (the next step's gate gradients, or with
// SOURCE_CURRENT this step's), staged once for all the units.
var<workgroup> src_row: array<f32, MAX_K>;

// Stages row b of step t_src of the phase running now (zeros without one).
fn stage_source(li: u32, k_size: u32, t_src: u32, has_src: bool, b: u32) {
    for (var k = li; k < k_size; k += SEQ_THREADS) {
        src_row[k] = select(0.0, load_src(t_src, true, b, k), has_src);
    }
    workgroupBarrier();
}

@compute @workgroup_size(SEQ_THREADS, 1, 1)
fn sequence_backward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let b = wg.x + wg.y * nwg.x;
    let steps = phases[0].p.steps;
    let flags = phases[0].p.flags;
    if (b >= phases[0].p.batch) {
        return; // the whole workgroup
    }
    load_weights(li);
    let reverse = (flags & REVERSE) != 0u;
    for (var s = chunk.first; s < chunk.first + chunk.count; s++) {
        // Backward processing order: the forward order reversed.
        let t = select(steps - 1u - s, s, reverse);
        let first = select(t == 0u, t + 1u == steps, reverse);
        let t_prev = select(t - 1u, t + 1u, reverse);
        // The step that read h_t as its h_prev (its dG multiplies W_hh).
        let t_next = select(t + 1u, t - 1u, reverse);
        let in_sequence = (flags & LENGTHS) == 0u || t < lengths[b];
        run_step(li, Step(t, b, first, t_prev, s > 0u, t_next, in_sequence));
    }
    if (chunk.h0 != 0u) {
        // dh_0: the first step's dG (the last processed) times W_hh, plus the carry.
        dims = phases[0];
        stage_source(li, K0, select(0u, steps - 1u, reverse), true, b);
        // @unroll
        for (var slot = 0u; slot < SLOTS0; slot++) {
            var rec = 0.0;
            // @unroll
            for (var k = 0u; k < K0; k++) {
                rec += src_row[k] * w0[slot][k];
            }
            let unit = Unit(0u, b, li + slot * SEQ_THREADS, true, 0u, true);
            if (unit.j < dims.p.units) {
                state[slot_of(2u, unit)] = rec + state[slot_of(0u, unit)];
            }
        }
    }
}
