// The fast path's edge tensor product on CPU (issue #8): tabulated path weights, channel-wise tensor product
// and pooling onto receivers in one pass, so no per-edge message or weight array is ever materialised.
//
// Same map as GroupedChannelwiseTP.accumulate with HermiteTable weights (trajcast_dist/model/grouped.py,
// tabulate.py). Work items are (degree group, path): each owns distinct output columns, so threads never write
// the same memory and the result does not depend on the number of threads.
#include <torch/extension.h>
#include <ATen/Parallel.h>

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

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("edge_tp_pooled", &edge_tp_pooled, "tabulated channel-wise edge tensor product pooled onto receivers");
}
