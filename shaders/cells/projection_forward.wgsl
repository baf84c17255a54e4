// The projection of an LSTM with proj_size (nn.LSTM(proj_size=P)), a dispatch of its own after
// the LSTM's at every step: with SOURCE_CURRENT, rec = (o ⊙ tanh(c_t)) · W_hrᵀ for P units:
//
//     h_t = W_hr (o_t ⊙ tanh(c_t))
//
// Padding steps carry the projected h.

fn forward_unit(u: Unit, rec: vec4<f32>) {
    var h = prev_h(u);
    if (u.in_sequence) {
        h = rec.x;
    }
    store_h(u, h);
}
