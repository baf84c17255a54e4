// The GRU's pointwise forward part (nn.GRU), with rec = h_prev · W_hhᵀ per gate (r, z, n) and
// the hoisted projection x·W_ihᵀ + b_ih (b_hh is added here: b_hn must stay inside r ⊙ (…)):
//
//     r = σ(W_ir x + b_ir + W_hr h + b_hr),   z = σ(W_iz x + b_iz + W_hz h + b_hz)
//     n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),   h_t = (1 - z) ⊙ n + z ⊙ h_prev
//
// Keeps r, z, n and W_hn h + b_hn for the backward pass. Padding steps carry h.

fn recurrent_bias(u: Unit, g: u32) -> f32 {
    if ((dims.p.flags & BIAS) != 0u) {
        return params[dims.bias_hh + g * dims.p.units + u.j];
    }
    return 0.0;
}

fn forward_unit(u: Unit, rec: vec4<f32>) {
    let h_prev = prev_h(u);
    var h = h_prev;
    if (u.in_sequence) {
        let r = sigmoid(xproj_at(u, 0u) + rec.x + recurrent_bias(u, 0u));
        let z = sigmoid(xproj_at(u, 1u) + rec.y + recurrent_bias(u, 1u));
        let hn = rec.z + recurrent_bias(u, 2u);
        let n = tanh_precise(xproj_at(u, 2u) + r * hn);
        h = (1.0 - z) * n + z * h_prev;
        keep(u, 0u, r);
        keep(u, 1u, z);
        keep(u, 2u, n);
        keep(u, 3u, hn);
    }
    store_h(u, h);
}
