// The vanilla RNN's pointwise backward part, with dh the whole gradient reaching h_t:
//
//     dG_t = dh ⊙ act'(h_t):  1 - h_t² for tanh,  [h_t > 0] for relu (RELU flag)
//
// Padding steps pass the gradient through (dG_t = 0). Probe: ∂L/∂h_k.

fn backward_unit(u: Unit, rec: f32) {
    if (!u.in_sequence) {
        skip_padding(u, rec);
        return;
    }
    let dh = step_dh(u, rec);
    let h = saved_at(u);
    if ((dims.p.flags & RELU) != 0u) {
        store_grad(u, 0u, select(0.0, dh, h > 0.0));
    } else {
        store_grad(u, 0u, dh * (1.0 - h * h));
    }
    probe(u, 0u, dh);
}
