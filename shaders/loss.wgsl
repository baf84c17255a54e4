// Losses with their gradients, and their deterministic mean.
//
//   cross_entropy: per row r of logits [N, V] with target t_r (IGNORE = padding):
//       loss_r = logsumexp(z_r) - z_r[t_r]
//       dz_r   = (softmax(z_r) - onehot(t_r)) · scale          (scale = 1 / number of targets)
//     one workgroup per row, its 64 invocations striding over the V classes (so no invocation
//     walks more than V / 64 of them: llvmpipe stops an invocation's loops after 65,535 trips);
//   squared_error: per row r of predictions [N] with targets y_r (f32 bits in `targets`):
//       loss_r = (p_r - y_r)²,   dp_r = 2 (p_r - y_r) · scale     (scale = 1 / N)
//   mean_partials, mean_loss: Σ_r loss_r · scale in a fixed tree order into out[0], in two
//     passes: each chunk of MEAN_CHUNK rows sums into its first row, then one workgroup adds
//     the chunks.
//
// IGNORE, ROW_THREADS, MEAN_CHUNK and THREADS come from the host (kernels/loss.rs).

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

var<workgroup> row_scratch: array<f32, ROW_THREADS>;

// The maximum (max_of) or sum of v over the row's invocations, in a fixed tree order.
fn row_reduce(li: u32, v: f32, max_of: bool) -> f32 {
    row_scratch[li] = v;
    workgroupBarrier();
    // @unroll
    for (var level = 0u; level < ROW_LEVELS; level++) {
        let stride = ROW_THREADS >> (level + 1u);
        if (li < stride) {
            let other = row_scratch[li + stride];
            row_scratch[li] = select(row_scratch[li] + other, max(row_scratch[li], other), max_of);
        }
        workgroupBarrier();
    }
    let total = row_scratch[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(ROW_THREADS, 1, 1)
fn cross_entropy(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let r = wg.x + wg.y * nwg.x;
    if (r >= p.rows) {
        return; // the whole workgroup
    }
    let base = r * p.cols;
    let label = targets[r];
    if (label == IGNORE) {
        for (var v = li; v < p.cols; v += ROW_THREADS) {
            grad[base + v] = 0.0;
        }
        if (li == 0u) {
            rows[r] = 0.0;
        }
        return;
    }
    var m = input[base];
    for (var v = li; v < p.cols; v += ROW_THREADS) {
        m = max(m, input[base + v]);
    }
    m = row_reduce(li, m, true);
    var sum = 0.0;
    for (var v = li; v < p.cols; v += ROW_THREADS) {
        sum += exp(input[base + v] - m);
    }
    sum = row_reduce(li, sum, false);
    for (var v = li; v < p.cols; v += ROW_THREADS) {
        var d = exp(input[base + v] - m) / sum;
        if (v == label) {
            d -= 1.0;
        }
        grad[base + v] = d * p.scale;
    }
    if (li == 0u) {
        rows[r] = log(sum) + m - input[base + label];
    }
}

@compute @workgroup_size(64, 1, 1)
fn squared_error(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= p.rows) {
        return;
    }
    let diff = input[r] - bitcast<f32>(targets[r]);
    rows[r] = diff * diff;
    grad[r] = 2.0 * diff * p.scale;
}

var<workgroup> partial: array<f32, THREADS>;

fn tree_sum(li: u32, v: f32) -> f32 {
    partial[li] = v;
    workgroupBarrier();
    // @unroll
    for (var level = 0u; level < THREAD_LEVELS; level++) {
        let stride = THREADS >> (level + 1u);
        if (li < stride) {
            partial[li] += partial[li + stride];
        }
        workgroupBarrier();
    }
    return partial[0];
}

// Chunk wg.x of MEAN_CHUNK rows: its sum goes to its first row.
@compute @workgroup_size(THREADS, 1, 1)
fn mean_partials(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let first = wg.x * MEAN_CHUNK;
    var s = 0.0;
    for (var r = first + li; r < min(p.rows, first + MEAN_CHUNK); r += THREADS) {
        s += rows[r];
    }
    let total = tree_sum(li, s);
    if (li == 0u) {
        rows[first] = total;
    }
}

@compute @workgroup_size(THREADS, 1, 1)
fn mean_loss(@builtin(local_invocation_index) li: u32) {
    let chunks = (p.rows + MEAN_CHUNK - 1u) / MEAN_CHUNK;
    var s = 0.0;
    for (var c = li; c < chunks; c += THREADS) {
        s += rows[c * MEAN_CHUNK];
    }
    let total = tree_sum(li, s);
    if (li == 0u) {
        out[0] = total * p.scale;
    }
}
