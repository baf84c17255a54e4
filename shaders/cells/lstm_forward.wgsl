// The LSTM's pointwise forward part (nn.LSTM), with rec = h_prev · W_hhᵀ per gate:
//
//     i, f, g, o = σ, σ, tanh, σ of (rec + x·W_ihᵀ + b_ih + b_hh)   (gate rows i, f, g, o)
//     c_t = f ⊙ c_prev + i ⊙ g,   h_t = o ⊙ tanh(c_t)
//
// Keeps i, f, g, o for the backward pass; c_t goes to cs slot t % cs_slots (T when training,
// 2 for inference). Padding steps carry c and h.

fn forward_unit(u: Unit, rec: vec4<f32>) {
    var c_prev: f32;
    if (u.has_prev) {
        c_prev = cs[dims.cs_base + ((u.t_prev % dims.cs_slots) * dims.p.batch + u.b) * dims.cs_stride + u.j];
    } else {
        c_prev = state[dims.c_init + u.b * dims.p.units + u.j];
    }
    var c = c_prev;
    var h = carried_h(u);
    if (u.in_sequence) {
        let pre = rec + vec4<f32>(xproj_at(u, 0u), xproj_at(u, 1u), xproj_at(u, 2u), xproj_at(u, 3u));
        let ig = sigmoid(pre.x);
        let fg = sigmoid(pre.y);
        let gg = tanh_precise(pre.z);
        let og = sigmoid(pre.w);
        c = fg * c_prev + ig * gg;
        h = og * tanh_precise(c);
        keep(u, 0u, ig);
        keep(u, 1u, fg);
        keep(u, 2u, gg);
        keep(u, 3u, og);
    }
    cs[dims.cs_base + ((u.t % dims.cs_slots) * dims.p.batch + u.b) * dims.cs_stride + u.j] = c;
    store_h(u, h);
    if (u.is_last) {
        state[dims.c_last + u.b * dims.p.units + u.j] = c;
    }
}
