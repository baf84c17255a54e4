// Copies a sequence between layouts, for the model's boundaries and between stacked layers:
//     dst[t, b, f] = src[t, b, f] · keep(t, b, f) · mask(t, b)
// where either side may be batch-first ([B, T, F] instead of [T, B, F]), mask zeroes padding
// steps (t ≥ lengths[b]) and keep is inverted dropout: 0 with probability p, else 1/(1-p),
// drawn from a counter-based hash of (seed, t, b, f) so the backward pass redraws the same mask
// in whatever layout it runs.

// THREADS and the flags (SRC_BATCH_FIRST, DST_BATCH_FIRST, MASK, DROPOUT) come from the host
// (kernels/sequence.rs).

struct Params {
    steps: u32,
    batch: u32,
    features: u32,
    flags: u32,
    src_offset: u32,
    dst_offset: u32,
    seed: u32,
    drop_threshold: u32, // a draw below this is dropped: p · 2³²
    keep_scale: f32,     // 1 / (1 - p)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> lengths: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

// A 32-bit integer hash with good avalanche (Chris Wellons' lowbias32).
fn hash(x: u32) -> u32 {
    var v = x;
    v ^= v >> 16u;
    v *= 0x7feb352du;
    v ^= v >> 15u;
    v *= 0x846ca68bu;
    v ^= v >> 16u;
    return v;
}

@compute @workgroup_size(THREADS, 1, 1)
fn copy_sequence(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * THREADS;
    let total = p.steps * p.batch * p.features;
    if (i >= total) {
        return;
    }
    // (t, b, f) from the destination's layout.
    let f = i % p.features;
    let row = i / p.features;
    var t: u32;
    var b: u32;
    if ((p.flags & DST_BATCH_FIRST) != 0u) {
        b = row / p.steps;
        t = row % p.steps;
    } else {
        t = row / p.batch;
        b = row % p.batch;
    }
    var src_row = t * p.batch + b;
    if ((p.flags & SRC_BATCH_FIRST) != 0u) {
        src_row = b * p.steps + t;
    }
    var v = src[p.src_offset + src_row * p.features + f];
    if ((p.flags & MASK) != 0u && t >= lengths[b]) {
        v = 0.0;
    }
    if ((p.flags & DROPOUT) != 0u) {
        let logical = (t * p.batch + b) * p.features + f;
        if (hash(hash(logical) ^ p.seed) < p.drop_threshold) {
            v = 0.0;
        } else {
            v *= p.keep_scale;
        }
    }
    dst[p.dst_offset + i] = v;
}
