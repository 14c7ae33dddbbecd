// The fast paths' edge tensor product on CPU: channel-wise tensor product and pooling onto receivers in one
// pass, so no per-edge message array is ever materialised.
//
// edge_tp_pooled (inference, issue #8): path weights interpolated from a table inside the loop, so no per-edge
// weight array exists either. Same map as GroupedChannelwiseTP.accumulate with HermiteTable weights
// (trajcast_dist/model/grouped.py, tabulate.py). Work items are (degree group, path): each owns distinct output
// columns, so threads never write the same memory and the result does not depend on the number of threads.
//
// edge_tp_forward / edge_tp_backward (training, issue #14): weights given (they come from the radial MLP, which
// trains; edge e reads row weight_index[e], so the two directions of a pair share one row), and the backward
// pass for them and for the node features. Every quantity is channel-wise,
// so work items are (degree group, channel block): an item owns its channels of the output, of the weight
// gradient and of the node-feature gradient (which senders scatter into), and each channel's sums run over the
// edges in order whatever the block size — the result is the same for any number of threads.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

namespace {

template <typename T>
void pooled_kernel(const std::vector<torch::Tensor>& nodes, const std::vector<torch::Tensor>& cgs,
                   const std::vector<torch::Tensor>& path_columns, const std::vector<int64_t>& weight_offsets,
                   const torch::Tensor& table, double lo, double step, int64_t num_nodes,
                   const torch::Tensor& senders, const torch::Tensor& receivers, const torch::Tensor& sh,
                   const torch::Tensor& lengths, const std::vector<torch::Tensor>& pooled) {
  const int64_t num_edges = senders.size(0), num_sh = sh.size(1), width = table.size(1);
  const int64_t* snd = senders.data_ptr<int64_t>();
  const int64_t* rcv = receivers.data_ptr<int64_t>();
  const T* y_all = sh.data_ptr<T>();
  const T* r = lengths.data_ptr<T>();
  const T* rows = table.data_ptr<T>();
  std::vector<std::pair<int64_t, int64_t>> items;  // (group, path)
  for (size_t g = 0; g < nodes.size(); ++g)
    for (int64_t p = 0; p + 1 < path_columns[g].size(0); ++p) items.emplace_back(g, p);

  at::parallel_for(0, static_cast<int64_t>(items.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t g = items[item].first, p = items[item].second;
      const int64_t l_dim = nodes[g].size(1), channels = nodes[g].size(2), out_dim = pooled[g].size(1);
      const int64_t* columns = path_columns[g].data_ptr<int64_t>();
      const int64_t first = columns[p], last = columns[p + 1];
      const T* h = nodes[g].data_ptr<T>();
      const T* cg = cgs[g].data_ptr<T>();
      T* out = pooled[g].data_ptr<T>();
      const int64_t column = weight_offsets[g] + p * channels;
      std::vector<T> a((last - first) * l_dim), w(channels), x_dot_a(channels);
      for (int64_t e = 0; e < num_edges; ++e) {
        // Cubic Hermite interpolation as HermiteTable.forward: rows [0, n) values, [n, 2n) slopes × step.
        double t = (static_cast<double>(r[e]) - lo) / step;
        t = std::min(std::max(t, 0.0), static_cast<double>(num_nodes - 1));
        const double cell = std::min(std::floor(t), static_cast<double>(num_nodes - 2));
        const T s = static_cast<T>(t - cell), s2 = s * s, s3 = s2 * s;
        const T b0 = 1 - 3 * s2 + 2 * s3, b1 = s - 2 * s2 + s3, b2 = 3 * s2 - 2 * s3, b3 = s3 - s2;
        const int64_t k = static_cast<int64_t>(cell);
        const T* v0 = rows + k * width + column;
        const T* v1 = v0 + width;
        const T* d0 = rows + (num_nodes + k) * width + column;
        const T* d1 = d0 + width;
        for (int64_t c = 0; c < channels; ++c) w[c] = b0 * v0[c] + b1 * d0[c] + b2 * v1[c] + b3 * d1[c];
        // A = Y(r̂) · CG for this path's output components: (2 l_out + 1) × (2 l_in + 1).
        const T* y = y_all + e * num_sh;
        for (int64_t o = first; o < last; ++o)
          for (int64_t m = 0; m < l_dim; ++m) {
            T acc = 0;
            for (int64_t q = 0; q < num_sh; ++q) acc += y[q] * cg[q * out_dim * l_dim + o * l_dim + m];
            a[(o - first) * l_dim + m] = acc;
          }
        const T* x = h + snd[e] * l_dim * channels;
        T* target = out + rcv[e] * out_dim * channels;
        for (int64_t o = first; o < last; ++o) {
          const T* a_o = a.data() + (o - first) * l_dim;
          for (int64_t c = 0; c < channels; ++c) x_dot_a[c] = a_o[0] * x[c];
          for (int64_t m = 1; m < l_dim; ++m) {
            const T a_om = a_o[m];
            const T* x_m = x + m * channels;
            for (int64_t c = 0; c < channels; ++c) x_dot_a[c] += a_om * x_m[c];
          }
          T* target_o = target + o * channels;
          for (int64_t c = 0; c < channels; ++c) target_o[c] += w[c] * x_dot_a[c];
        }
      }
    }
  });
}

// A = Y(r̂_e) · CG for all output components of a group: (out_dim × l_dim).
template <typename T>
inline void edge_block(const T* y, const T* cg, int64_t num_sh, int64_t out_dim, int64_t l_dim, T* a) {
  for (int64_t om = 0; om < out_dim * l_dim; ++om) a[om] = 0;
  for (int64_t q = 0; q < num_sh; ++q) {
    const T yq = y[q];
    const T* cg_q = cg + q * out_dim * l_dim;
    for (int64_t om = 0; om < out_dim * l_dim; ++om) a[om] += yq * cg_q[om];
  }
}

struct Item {
  int64_t group, first, last;  // channels [first, last) of one degree group
};

std::vector<Item> channel_items(const std::vector<torch::Tensor>& nodes) {
  const int64_t blocks = std::max<int64_t>(1, at::get_num_threads());
  std::vector<Item> items;
  for (size_t g = 0; g < nodes.size(); ++g) {
    const int64_t channels = nodes[g].size(2), size = (channels + blocks - 1) / blocks;
    for (int64_t c = 0; c < channels; c += size) items.push_back({static_cast<int64_t>(g), c,
                                                                  std::min(channels, c + size)});
  }
  return items;
}

// One edge's contribution to channels [c0, c1) of one degree group, L = 2l + 1 fixed at compile time (the sum
// over m unrolled, so each channel's value stays in a register: one pass over the channels per output
// component); L = 0 reads the size at run time.
// Forward:  out[o, c] += w[path(o), c] Σ_m a[o, m] x[m, c]
// Backward: gw[path(o), c] += Σ_{o ∈ path} go[o, c] Σ_m a[o, m] x[m, c];  gx[m, c] += Σ_o a[o, m] w[path(o), c] go[o, c]
template <int L, bool Backward, typename T>
inline void edge_item(const T* a, const T* x, const T* w, const int64_t* columns, int64_t num_paths,
                      int64_t l_dim_runtime, int64_t channels, int64_t c0, int64_t c1, T* __restrict__ out,
                      const T* go, T* __restrict__ gw, T* gx, T* __restrict__ u) {
  const int64_t l_dim = L ? L : l_dim_runtime;
  for (int64_t p = 0; p < num_paths; ++p) {
    const T* w_p = w + p * channels;
    T* gw_p = Backward ? gw + p * channels : nullptr;
    for (int64_t o = columns[p]; o < columns[p + 1]; ++o) {
      const T* a_o = a + o * l_dim;
      if (!Backward) {
        T* out_o = out + o * channels;
        for (int64_t c = c0; c < c1; ++c) {
          T t = 0;
          for (int64_t m = 0; m < l_dim; ++m) t += a_o[m] * x[m * channels + c];
          out_o[c] += w_p[c] * t;
        }
        continue;
      }
      const T* go_o = go + o * channels;
      for (int64_t c = c0; c < c1; ++c) {
        T t = 0;
        for (int64_t m = 0; m < l_dim; ++m) t += a_o[m] * x[m * channels + c];
        gw_p[c] += go_o[c] * t;
        u[c] = w_p[c] * go_o[c];
      }
      for (int64_t m = 0; m < l_dim; ++m) {  // row by row: contiguous stores
        const T a_om = a_o[m];
        T* __restrict__ gx_m = gx + m * channels;
        for (int64_t c = c0; c < c1; ++c) gx_m[c] += a_om * u[c];
      }
    }
  }
}

template <bool Backward, typename T>
void edge_item_any(int64_t l_dim, const T* a, const T* x, const T* w, const int64_t* columns, int64_t num_paths,
                   int64_t channels, int64_t c0, int64_t c1, T* out, const T* go, T* gw, T* gx, T* u) {
  switch (l_dim) {
    case 1: return edge_item<1, Backward>(a, x, w, columns, num_paths, 1, channels, c0, c1, out, go, gw, gx, u);
    case 3: return edge_item<3, Backward>(a, x, w, columns, num_paths, 3, channels, c0, c1, out, go, gw, gx, u);
    case 5: return edge_item<5, Backward>(a, x, w, columns, num_paths, 5, channels, c0, c1, out, go, gw, gx, u);
    case 7: return edge_item<7, Backward>(a, x, w, columns, num_paths, 7, channels, c0, c1, out, go, gw, gx, u);
    default:
      return edge_item<0, Backward>(a, x, w, columns, num_paths, l_dim, channels, c0, c1, out, go, gw, gx, u);
  }
}

// Training forward (pooled) or backward (grad_weights, written whole; grad_nodes, accumulated) of the
// channel-wise edge tensor product with per-edge weights.
template <typename T>
void train_kernel(const std::vector<torch::Tensor>& nodes, const std::vector<torch::Tensor>& cgs,
                  const std::vector<torch::Tensor>& path_columns, const std::vector<int64_t>& weight_offsets,
                  const torch::Tensor& weights, const torch::Tensor& weight_index, const torch::Tensor& senders,
                  const torch::Tensor& receivers, const torch::Tensor& sh, const std::vector<torch::Tensor>& pooled,
                  const std::vector<torch::Tensor>& grad_pooled, const torch::Tensor& grad_weights,
                  const std::vector<torch::Tensor>& grad_nodes) {
  const bool backward = !grad_pooled.empty();
  const int64_t num_edges = senders.size(0), num_sh = sh.size(1), width = weights.size(1);
  const int64_t* snd = senders.data_ptr<int64_t>();
  const int64_t* rcv = receivers.data_ptr<int64_t>();
  const int64_t* row = weight_index.data_ptr<int64_t>();
  const T* y_all = sh.data_ptr<T>();
  const T* w_all = weights.data_ptr<T>();
  T* gw_all = backward ? grad_weights.data_ptr<T>() : nullptr;
  const std::vector<Item> items = channel_items(nodes);

  at::parallel_for(0, static_cast<int64_t>(items.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t g = items[i].group, c0 = items[i].first, c1 = items[i].last;
      const int64_t l_dim = nodes[g].size(1), channels = nodes[g].size(2), out_dim = cgs[g].size(1) / l_dim;
      const int64_t num_paths = path_columns[g].size(0) - 1;
      const int64_t* columns = path_columns[g].data_ptr<int64_t>();
      const T* h = nodes[g].data_ptr<T>();
      const T* cg = cgs[g].data_ptr<T>();
      std::vector<T> a(out_dim * l_dim), u(channels);
      for (int64_t e = 0; e < num_edges; ++e) {
        edge_block(y_all + e * num_sh, cg, num_sh, out_dim, l_dim, a.data());
        const T* x = h + snd[e] * l_dim * channels;
        const T* w = w_all + row[e] * width + weight_offsets[g];
        if (!backward) {
          T* out = pooled[g].data_ptr<T>() + rcv[e] * out_dim * channels;
          edge_item_any<false, T>(l_dim, a.data(), x, w, columns, num_paths, channels, c0, c1, out, nullptr,
                                  nullptr, nullptr, nullptr);
          continue;
        }
        // an item owns its channels of every weight row, so rows shared by edges are summed without races
        edge_item_any<true, T>(l_dim, a.data(), x, w, columns, num_paths, channels, c0, c1, nullptr,
                               grad_pooled[g].data_ptr<T>() + rcv[e] * out_dim * channels,
                               gw_all + row[e] * width + weight_offsets[g],
                               grad_nodes[g].data_ptr<T>() + snd[e] * l_dim * channels, u.data());
      }
    }
  });
}

void check(const torch::Tensor& t, const char* name, at::ScalarType dtype) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
  TORCH_CHECK(t.scalar_type() == dtype, name, " has dtype ", t.scalar_type(), ", expected ", dtype);
}

}  // namespace

// pooled[g][i, o, c] += Σ_{edges e → i} w_{g,path(o),c}(r_e) Σ_m (Y(r̂_e)·CG_g)[o, m] nodes[g][sender(e), m, c]
void edge_tp_pooled(std::vector<torch::Tensor> nodes, std::vector<torch::Tensor> cgs,
                    std::vector<torch::Tensor> path_columns, std::vector<int64_t> weight_offsets,
                    torch::Tensor table, double lo, double step, int64_t num_nodes, torch::Tensor senders,
                    torch::Tensor receivers, torch::Tensor sh, torch::Tensor lengths,
                    std::vector<torch::Tensor> pooled) {
  const auto dtype = table.scalar_type();
  TORCH_CHECK(nodes.size() == cgs.size() && nodes.size() == path_columns.size() &&
              nodes.size() == weight_offsets.size() && nodes.size() == pooled.size(), "one entry per group");
  TORCH_CHECK(table.size(0) == 2 * num_nodes, "table must hold num_nodes values then num_nodes slopes");
  check(table, "table", dtype);
  check(sh, "sh", dtype);
  check(lengths, "lengths", dtype);
  check(senders, "senders", at::kLong);
  check(receivers, "receivers", at::kLong);
  for (size_t g = 0; g < nodes.size(); ++g) {
    check(nodes[g], "nodes", dtype);
    check(cgs[g], "cg", dtype);
    check(path_columns[g], "path_columns", at::kLong);
    check(pooled[g], "pooled", dtype);
    TORCH_CHECK(nodes[g].dim() == 3 && pooled[g].dim() == 3 && pooled[g].size(2) == nodes[g].size(2),
                "nodes (N, 2l+1, C) and pooled (N, out, C) must agree on C");
  }
  AT_DISPATCH_FLOATING_TYPES(dtype, "edge_tp_pooled", [&] {
    pooled_kernel<scalar_t>(nodes, cgs, path_columns, weight_offsets, table, lo, step, num_nodes, senders,
                            receivers, sh, lengths, pooled);
  });
}

void check_train(const std::vector<torch::Tensor>& nodes, const std::vector<torch::Tensor>& cgs,
                 const std::vector<torch::Tensor>& path_columns, const std::vector<int64_t>& weight_offsets,
                 const torch::Tensor& weights, const torch::Tensor& weight_index, const torch::Tensor& senders,
                 const torch::Tensor& receivers, const torch::Tensor& sh, const std::vector<torch::Tensor>& per_group,
                 const char* name) {
  const auto dtype = weights.scalar_type();
  TORCH_CHECK(nodes.size() == cgs.size() && nodes.size() == path_columns.size() &&
              nodes.size() == weight_offsets.size() && nodes.size() == per_group.size(), "one entry per group");
  check(weights, "weights", dtype);
  check(sh, "sh", dtype);
  check(senders, "senders", at::kLong);
  check(receivers, "receivers", at::kLong);
  check(weight_index, "weight_index", at::kLong);
  TORCH_CHECK(weights.dim() == 2 && weight_index.size(0) == senders.size(0) && sh.size(0) == senders.size(0),
              "weight_index (E,), sh (E, S) and senders (E,) must agree on E; weights (U, W)");
  TORCH_CHECK(senders.size(0) == 0 || (weight_index.min().item<int64_t>() >= 0 &&
                                       weight_index.max().item<int64_t>() < weights.size(0)),
              "weight_index must be rows of weights");
  for (size_t g = 0; g < nodes.size(); ++g) {
    check(nodes[g], "nodes", dtype);
    check(cgs[g], "cg", dtype);
    check(path_columns[g], "path_columns", at::kLong);
    check(per_group[g], name, dtype);
    TORCH_CHECK(nodes[g].dim() == 3 && per_group[g].dim() == 3 && per_group[g].size(2) == nodes[g].size(2),
                "nodes (N, 2l+1, C) and ", name, " (N, out, C) must agree on C");
  }
}

// Training forward: pooled[g] (zero-initialised by the caller) += the messages of all edges, weights given.
void edge_tp_forward(std::vector<torch::Tensor> nodes, std::vector<torch::Tensor> cgs,
                     std::vector<torch::Tensor> path_columns, std::vector<int64_t> weight_offsets,
                     torch::Tensor weights, torch::Tensor weight_index, torch::Tensor senders,
                     torch::Tensor receivers, torch::Tensor sh, std::vector<torch::Tensor> pooled) {
  check_train(nodes, cgs, path_columns, weight_offsets, weights, weight_index, senders, receivers, sh, pooled,
              "pooled");
  AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "edge_tp_forward", [&] {
    train_kernel<scalar_t>(nodes, cgs, path_columns, weight_offsets, weights, weight_index, senders, receivers, sh,
                           pooled, {}, torch::Tensor(), {});
  });
}

// Training backward: grad_weights (U, W) and grad_nodes[g] (N, 2l+1, C), both zero-initialised by the caller.
void edge_tp_backward(std::vector<torch::Tensor> nodes, std::vector<torch::Tensor> cgs,
                      std::vector<torch::Tensor> path_columns, std::vector<int64_t> weight_offsets,
                      torch::Tensor weights, torch::Tensor weight_index, torch::Tensor senders,
                      torch::Tensor receivers, torch::Tensor sh, std::vector<torch::Tensor> grad_pooled,
                      torch::Tensor grad_weights, std::vector<torch::Tensor> grad_nodes) {
  check_train(nodes, cgs, path_columns, weight_offsets, weights, weight_index, senders, receivers, sh, grad_pooled,
              "grad_pooled");
  check(grad_weights, "grad_weights", weights.scalar_type());
  TORCH_CHECK(grad_weights.sizes() == weights.sizes(), "grad_weights must have the shape of weights");
  for (size_t g = 0; g < nodes.size(); ++g) {
    check(grad_nodes[g], "grad_nodes", weights.scalar_type());
    TORCH_CHECK(grad_nodes[g].sizes() == nodes[g].sizes(), "grad_nodes must have the shape of nodes");
  }
  AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "edge_tp_backward", [&] {
    train_kernel<scalar_t>(nodes, cgs, path_columns, weight_offsets, weights, weight_index, senders, receivers, sh,
                           {}, grad_pooled, grad_weights, grad_nodes);
  });
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("edge_tp_pooled", &edge_tp_pooled, "tabulated channel-wise edge tensor product pooled onto receivers");
  m.def("edge_tp_forward", &edge_tp_forward, "channel-wise edge tensor product with given weight rows");
  m.def("edge_tp_backward", &edge_tp_backward, "gradients of edge_tp_forward for the weights and node features");
}
