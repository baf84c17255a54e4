// The LSTM's pointwise backward part, with dh the whole gradient reaching h_t:
//
//     dc    = dc_carry + dh ⊙ o ⊙ (1 - tanh²(c_t))
//     dG_t  = (dc ⊙ g ⊙ i(1-i),  dc ⊙ c_prev ⊙ f(1-f),  dc ⊙ i ⊙ (1-g²),  dh ⊙ tanh(c_t) ⊙ o(1-o))
//     dc_carry ← dc ⊙ f
//
// Padding steps pass the gradient through: dG_t = 0, dc_carry unchanged.
// Probes: ∂L/∂h_k, ∂L/∂c_k, the lecture's explicit cell path t₀ = dh_{T-1} ⊙ o_{T-1} ⊙
// tanh'(c_{T-1}) ⊙ f_{T-1} ⊙ … ⊙ f_{k+1} and the forget-gate product f_{T-1} ⊙ … ⊙ f_{k+1}.

fn backward_unit(u: Unit, rec: f32) {
    if (!u.in_sequence) {
        skip_padding(u, rec);
        return;
    }
    let dh = step_dh(u, rec);
    let ig = kept(u, 0u);
    let fg = kept(u, 1u);
    let gg = kept(u, 2u);
    let og = kept(u, 3u);
    let c = saved_at(u);
    let c_prev = saved_prev(u);
    let tc = tanh_precise(c);
    let dc = state[slot_of(1u, u)] + dh * og * (1.0 - tc * tc);
    store_grad(u, 0u, dc * gg * ig * (1.0 - ig));
    store_grad(u, 1u, dc * c_prev * fg * (1.0 - fg));
    store_grad(u, 2u, dc * ig * (1.0 - gg * gg));
    store_grad(u, 3u, dh * tc * og * (1.0 - og));
    state[slot_of(1u, u)] = dc * fg;
    probe_paths(u, dh, dc, dh * og * (1.0 - tc * tc), fg);
}
