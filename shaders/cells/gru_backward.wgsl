// The GRU's pointwise backward part, with dh the whole gradient reaching h_t:
//
//     dn = dh ⊙ (1 - z) ⊙ (1 - n²),   dz = dh ⊙ (h_prev - n) ⊙ z(1-z),   dr = dn ⊙ hn ⊙ r(1-r)
//     recurrent side (× W_hh):  (dr, dz, dn ⊙ r);   input side (× W_ih):  (dr, dz, dn)
//     dh_carry += dh ⊙ z          (the explicit path: h_t = … + z ⊙ h_prev)
//
// Padding steps pass the gradient through. Probes: ∂L/∂h_k, and the explicit path through the
// update gates dh_{T-1} ⊙ z_{T-1} ⊙ … ⊙ z_{k+1} with the product z_{T-1} ⊙ … ⊙ z_{k+1} (the
// update gate plays the forget gate's role).

fn backward_unit(u: Unit, rec: f32) {
    if (!u.in_sequence) {
        skip_padding(u, rec);
        return;
    }
    let dh = step_dh(u, rec);
    let r = kept(u, 0u);
    let z = kept(u, 1u);
    let n = kept(u, 2u);
    let hn = kept(u, 3u);
    let h_prev = saved_prev(u);
    let dn = dh * (1.0 - z) * (1.0 - n * n);
    let dz = dh * (h_prev - n) * z * (1.0 - z);
    let dr = dn * hn * r * (1.0 - r);
    store_grad(u, 0u, dr);
    store_grad(u, 1u, dz);
    store_grad(u, 2u, dn * r);
    store_input_grad(u, 0u, dr);
    store_input_grad(u, 1u, dz);
    store_input_grad(u, 2u, dn);
    state[slot_of(0u, u)] += dh * z;
    probe_paths(u, dh, 0.0, dh, z);
}
