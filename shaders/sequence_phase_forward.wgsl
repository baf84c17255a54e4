// Phase {p} of the forward sequence template (the host writes one copy per phase, with {p}
// its index): the invocation's share of W, SLOTS{p} units j = li + slot·SEQ_THREADS of
// GATES{p} rows of K{p} each, as vec4s of the gates at each k. Every index into w{p} is a
// constant once the loops are unrolled, so the array lives in registers (a dynamically
// indexed one would be scratch memory, which CPU adapters gather lane by lane).
var<private> w{p}: array<array<vec4<f32>, K{p}>, SLOTS{p}>;

fn load_weights{p}(li: u32) {
    let d = phases[{p}].p;
    // @unroll
    for (var slot = 0u; slot < SLOTS{p}; slot++) {
        let j = li + slot * SEQ_THREADS;
        // @unroll
        for (var k = 0u; k < K{p}; k++) {
            var w = vec4<f32>(0.0);
            if (j < d.units) {
                // @unroll
                for (var g = 0u; g < GATES{p}; g++) {
                    w[g] = params[d.w_offset + (g * d.units + j) * K{p} + k];
                }
            }
            w{p}[slot][k] = w;
        }
    }
}

fn run_phase{p}(li: u32, st: Step) {
    dims = phases[{p}];
    let current = (dims.p.flags & SOURCE_CURRENT) != 0u;
    for (var k = li; k < K{p}; k += SEQ_THREADS) {
        src_row[k] = load_src(select(st.t_prev, st.t, current), st.has_prev || current, st.b, k);
    }
    workgroupBarrier();
    // @unroll
    for (var slot = 0u; slot < SLOTS{p}; slot++) {
        var rec = vec4<f32>(0.0);
        // @unroll
        for (var k = 0u; k < K{p}; k++) {
            rec += src_row[k] * w{p}[slot][k];
        }
        let j = li + slot * SEQ_THREADS;
        if (j < dims.p.units) {
            phase{p}_unit(Unit(st.t, st.b, j, st.has_prev, st.t_prev, st.is_last, st.in_sequence), rec);
        }
    }
}
