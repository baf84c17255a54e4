// Phase {p} of the backward sequence template (one copy per phase, {p} its index): the
// invocation's columns of W, SLOTS{p} units j = li + slot·SEQ_THREADS of K{p} rows each, in
// registers (every index a constant once unrolled, as in the forward phases).
var<private> w{p}: array<array<f32, K{p}>, SLOTS{p}>;

fn load_weights{p}(li: u32) {
    let d = phases[{p}].p;
    // @unroll
    for (var slot = 0u; slot < SLOTS{p}; slot++) {
        let j = li + slot * SEQ_THREADS;
        // @unroll
        for (var k = 0u; k < K{p}; k++) {
            w{p}[slot][k] = select(0.0, params[d.w_offset + k * d.units + j], j < d.units);
        }
    }
}

fn run_phase{p}(li: u32, st: Step) {
    dims = phases[{p}];
    let current = (dims.p.flags & SOURCE_CURRENT) != 0u;
    stage_source(li, K{p}, select(st.t_next, st.t, current), st.has_next || current, st.b);
    // @unroll
    for (var slot = 0u; slot < SLOTS{p}; slot++) {
        var rec = 0.0;
        // @unroll
        for (var k = 0u; k < K{p}; k++) {
            rec += src_row[k] * w{p}[slot][k];
        }
        let j = li + slot * SEQ_THREADS;
        if (j < dims.p.units) {
            phase{p}_unit(Unit(st.t, st.b, j, st.first, st.t_prev, st.in_sequence), rec);
        }
    }
}
