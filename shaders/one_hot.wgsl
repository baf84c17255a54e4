// Token ids [N] → one-hot rows [N, V] (an id ≥ V, such as padding, gives a zero row): the input
// of a character model, so the LSTM's input projection GEMM doubles as the embedding lookup.

struct Params {
    rows: u32,
    vocab: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn one_hot(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.rows * p.vocab) {
        return;
    }
    let r = i / p.vocab;
    let v = i % p.vocab;
    dst[i] = select(0.0, 1.0, tokens[r] == v);
}
