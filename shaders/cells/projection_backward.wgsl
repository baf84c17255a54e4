// The projection's backward part (an LSTM with proj_size), a dispatch of its own before the
// LSTM's at every step: with rec = dG_next · W_hh over the P projected units, it forms the whole
// gradient of the projected h_t and stores it for the LSTM's dispatch (which multiplies it by
// W_hr, SOURCE_CURRENT) and for dW_hr after the loop:
//
//     dh_t = dy_t + dG_next · W_hh + dh_carry
//
// Padding steps pass the gradient through (dh_t = 0 here).

fn backward_unit(u: Unit, rec: f32) {
    if (!u.in_sequence) {
        skip_padding(u, rec);
        return;
    }
    store_grad(u, 0u, step_dh(u, rec));
}
