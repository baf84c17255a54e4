// The forward template's product for one gate (the RNN, the projection): each k of W is one
// f32, and acc[0] holds the 4 batch rows.
alias WTile = f32;

fn load_w(unit: u32, k: u32) -> f32 {
    if (unit < dims.p.units && k < dims.p.k_size) {
        return params[dims.p.w_offset + unit * dims.p.k_size + k];
    }
    return 0.0;
}

fn accumulate(acc: ptr<function, array<vec4<f32>, 4>>, h: vec4<f32>, w: f32) {
    (*acc)[0] += w * h;
}

fn sum_partials(li: u32, acc: ptr<function, array<vec4<f32>, 4>>, tile_rows: u32) {
    (*acc)[0] = sum_lanes(li, (*acc)[0]);
}

// The recurrent pre-activation of batch row r in the first component.
fn gate_pre(acc: ptr<function, array<vec4<f32>, 4>>, r: u32) -> vec4<f32> {
    return vec4<f32>((*acc)[0][r], 0.0, 0.0, 0.0);
}
