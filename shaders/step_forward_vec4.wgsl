// The forward template's product for cells of 2 to 4 gates: each k of W is a vec4 of the
// unit's gates, and acc[r] holds the gates of batch row r.
alias WTile = vec4<f32>;

fn load_w(unit: u32, k: u32) -> vec4<f32> {
    var w = vec4<f32>(0.0);
    if (unit < dims.p.units && k < dims.p.k_size) {
        // @unroll
        for (var g = 0u; g < GATES; g++) {
            w[g] = params[dims.p.w_offset + (g * dims.p.units + unit) * dims.p.k_size + k];
        }
    }
    return w;
}

fn accumulate(acc: ptr<function, array<vec4<f32>, 4>>, h: vec4<f32>, w: vec4<f32>) {
    (*acc)[0] += h.x * w;
    (*acc)[1] += h.y * w;
    (*acc)[2] += h.z * w;
    (*acc)[3] += h.w * w;
}

// One lane sum per batch row in the tile (at batch 1, one instead of four).
fn sum_partials(li: u32, acc: ptr<function, array<vec4<f32>, 4>>, tile_rows: u32) {
    // @unroll
    for (var r = 0u; r < 4u; r++) {
        if (r < tile_rows) {
            (*acc)[r] = sum_lanes(li, (*acc)[r]);
        }
    }
}

// The recurrent pre-activations of batch row r, one gate per component.
fn gate_pre(acc: ptr<function, array<vec4<f32>, 4>>, r: u32) -> vec4<f32> {
    return (*acc)[r];
}
