// The vanilla RNN's pointwise forward part (nn.RNN), with rec = h_prev · W_hhᵀ:
//
//     h_t = act(rec + x·W_ihᵀ + b_ih + b_hh),   act = tanh, or relu with the RELU flag
//
// Keeps nothing: the backward pass reads h_t. Padding steps carry h.

fn forward_unit(u: Unit, rec: vec4<f32>) {
    var h = carried_h(u);
    if (u.in_sequence) {
        let pre = rec.x + xproj_at(u, 0u);
        if ((dims.p.flags & RELU) != 0u) {
            h = select(max(pre, 0.0), pre, is_nan(pre)); // NaN passes, as in PyTorch
        } else {
            h = tanh_precise(pre);
        }
    }
    store_h(u, h);
}
