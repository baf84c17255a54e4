// Losses with their gradients, and their deterministic mean.
//
//   cross_entropy: per row r of logits [N, V] with target t_r (IGNORE = padding):
//       loss_r = logsumexp(z_r) - z_r[t_r]
//       dz_r   = (softmax(z_r) - onehot(t_r)) · scale          (scale = 1 / number of targets)
//   squared_error: per row r of predictions [N] with targets y_r (f32 bits in `targets`):
//       loss_r = (p_r - y_r)²,   dp_r = 2 (p_r - y_r) · scale     (scale = 1 / N)
//   mean_loss: Σ_r loss_r · scale, in a fixed tree order, into out[0].

// IGNORE (a target that does not count) comes from the host (kernels/loss.rs).

struct Params {
    rows: u32,
    cols: u32,
    scale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> rows: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn cross_entropy(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= p.rows) {
        return;
    }
    let base = r * p.cols;
    let label = targets[r];
    if (label == IGNORE) {
        for (var v = 0u; v < p.cols; v++) {
            grad[base + v] = 0.0;
        }
        rows[r] = 0.0;
        return;
    }
    var m = input[base];
    for (var v = 1u; v < p.cols; v++) {
        m = max(m, input[base + v]);
    }
    var sum = 0.0;
    for (var v = 0u; v < p.cols; v++) {
        sum += exp(input[base + v] - m);
    }
    for (var v = 0u; v < p.cols; v++) {
        var d = exp(input[base + v] - m) / sum;
        if (v == label) {
            d -= 1.0;
        }
        grad[base + v] = d * p.scale;
    }
    rows[r] = log(sum) + m - input[base + label];
}

@compute @workgroup_size(64, 1, 1)
fn squared_error(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= p.rows) {
        return;
    }
    let diff = input[r] - bitcast<f32>(targets[r]);
    rows[r] = diff * diff;
    grad[r] = 2.0 * diff * p.scale;
}

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn mean_loss(@builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    for (var r = li; r < p.rows; r += 256u) {
        s += rows[r];
    }
    partial[li] = s;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride /= 2u) {
        if (li < stride) {
            partial[li] += partial[li + stride];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        out[0] = partial[0] * p.scale;
    }
}
