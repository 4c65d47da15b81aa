// The built-in gemm: cache blocking, packing and threads around one SIMD micro-kernel.
//
// The layers, from the outside in (the classic GotoBLAS / BLIS structure):
//   1. threads   C is cut into one rectangle per thread, along M or N (plan_threads). Each
//                thread sums the whole K range for its own elements, in the same order whatever
//                the thread count, so results are bit-identical run to run (and across counts).
//   2. K blocks  the sum over k is taken kc steps at a time, so the panels being multiplied
//                stay in cache; the tile of C is read and written once per block.
//   3. packing   a block of op(A) (mc x kc) and of op(B) (kc x nc) is copied into panels of
//                MR rows / NR columns (gemm_pack.hpp), reused buffers held per thread; each
//                thread packs what its rectangle needs of both operands (see plan_threads).
//                A thin product reads the operand that would be reused least in place
//                instead (direct_operands).
//   4. macro     every MR-row panel of A meets every NR-column panel of B: one micro-kernel
//                call (gemm_kernel.hpp) per MR x NR tile of C.
// Cache roles (jr outer, ir inner, as in BLIS): one B panel (kc x NR) meets every A panel of
// the block in turn while the A panels stream from the A block in L2; per step the kernel
// reads NR floats of B and only MR of A, so the operand read most stays nearest
// (macro_kernel). The B panel fits L1 on AVX2 (16 x 384 floats, 24 KB); AVX-512's 48 x 384
// (72 KB) does not fit a 48 KB L1 and comes from L2 (see kMaxKC for the smaller kc that did
// not pay). A thin product that reads A in place keeps the other order (macro_kernel_direct).
#include "autograd/kernels/gemm.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <memory>
#include <new>
#include <utility>

#include "autograd/kernels/gemm_kernel.hpp"
#include "autograd/kernels/gemm_pack.hpp"
#include "autograd/kernels/gemm_packed.hpp"
#include "autograd/kernels/gemm_panels.hpp"
#include "autograd/kernels/parallel.hpp"

namespace ag {
namespace gemm_detail {
namespace {

// Block sizes chosen on a Zen 5 core (48 KB L1d, 1 MB L2) with bench_gemm; they also fit the
// AVX2 EPYC (32 KB L1d, 512 KB L2), where they were not re-tuned. On the AVX-512 Xeon (48 KB
// L1d, 2 MB L2) a kc of 128 or 192, so that a 48-wide B panel stays in L1, made dX = G W about
// 3% faster at one thread but Linear's forward (which reads W in place) 5 to 8% slower: the
// VAE's five large products took 2.04 ms at 384, 2.10 at 128, 2.09 at 192.
constexpr std::size_t kMaxKC = 384;
constexpr std::size_t kBBlockBytes = 512 * 1024;  // B block (kc x nc): half of L2
constexpr std::size_t kMC = 64 * kMR;             // A block: mc x kc, reused for every B block

// Below this many multiply-adds a second thread does not pay: handing it its part and waiting
// for it costs about a microsecond here, and two busy cores each run somewhat slower than one
// (measured: 64 x 64 x 64 ran faster on one thread, 128 x 48 x 64 on two).
constexpr double kMinParallelWork = 384.0 * 1024;
// Packing one element costs about as much as this many multiply-adds in the kernel (measured
// on AVX-512: 0.1 to 0.15 ns per packed element, 0.01 ns per multiply-add).
constexpr double kPackCost = 16.0;
// Cutting C into column slices costs about this many multiply-adds per row of C and per cut,
// on top of the packing. Fitted to timings of both cuts on the VAE's shapes: cutting by rows was
// as fast or faster on all of them but 20 x 400 x 128 (whose 20 rows do not split evenly), which
// the packing costs alone do not predict. A likely cause: with a cut by columns the threads
// write neighbouring stretches of every row, and the cache lines at the seams move between cores.
constexpr double kColumnCutCost = 20000.0;

// A buffer of floats, aligned for vector loads. Its first allocation is already as large as
// any block gemm packs (`largest`): which thread packs which part of a product varies from call
// to call, so a buffer sized by the parts a thread happened to get could still grow in a later
// epoch, and a training step would allocate. Pool threads allocate theirs as they start.
class Workspace {
 public:
  explicit Workspace(std::size_t largest) : largest_(largest) {}

  float* get(std::size_t n) {
    if (n > size_) {
      data_.reset();  // free first: the old contents are not needed
      size_ = std::max(n, largest_);
      data_.reset(static_cast<float*>(::operator new((size_ + kPackSlack) * sizeof(float), kAlign)));
    }
    return data_.get();
  }

 private:
  static constexpr std::align_val_t kAlign{64};  // a cache line, and an AVX-512 vector
  struct Free {
    void operator()(float* p) const { ::operator delete(p, kAlign); }
  };
  std::unique_ptr<float, Free> data_;
  std::size_t size_ = 0;
  std::size_t largest_;
};

// The largest packed blocks: A is at most kMC rows by kMaxKC steps; B at most kMaxKC steps by
// the widest block that fits kBBlockBytes (or one kNR panel when a step is longer than that).
thread_local Workspace t_packed_a(kMC * kMaxKC);
thread_local Workspace t_packed_b(std::max(kBBlockBytes / sizeof(float), kNR * kMaxKC));

// Pool threads get their buffers as they start (the calling thread on its first product).
void reserve_workspaces() {
  t_packed_a.get(1);
  t_packed_b.get(1);
}
[[maybe_unused]] const bool g_reserved_on_pool_threads = (detail::on_pool_thread_start(&reserve_workspaces), true);

std::size_t round_up(std::size_t x, std::size_t to) { return (x + to - 1) / to * to; }

// The operands as given: element (r, c) of op(X) is x[r * ld + c], or x[c * ld + r] if trans;
// or op(B)'s panels written by panels_b (gemm_panels.hpp), when set.
struct Operands {
  bool trans_a, trans_b;
  const float* a;
  std::size_t lda;
  const float* b;
  std::size_t ldb;
  const PanelSource* panels_b = nullptr;
};

// Packs rows [i0, i0 + mc) x steps [p0, p0 + kc) of op(A) into MR-row panels.
void pack_a(const Operands& op, std::size_t i0, std::size_t mc, std::size_t p0, std::size_t kc,
            float* dst) {
  for (std::size_t ir = 0; ir < mc; ir += kMR, dst += kMR * kc) {
    const std::size_t rows = std::min(kMR, mc - ir), i = i0 + ir;
    if (op.trans_a)
      copy_panel<kMR>(op.a + p0 * op.lda + i, op.lda, kc, rows, dst);
    else
      transpose_panel<kMR>(op.a + i * op.lda + p0, op.lda, kc, rows, dst);
  }
}

// Packs steps [p0, p0 + kc) x columns [j0, j0 + nc) of op(B) into NR-column panels.
void pack_b(const Operands& op, std::size_t j0, std::size_t nc, std::size_t p0, std::size_t kc,
            float* dst) {
  for (std::size_t jr = 0; jr < nc; jr += kNR, dst += kNR * kc) {
    const std::size_t cols = std::min(kNR, nc - jr), j = j0 + jr;
    if (op.panels_b)
      op.panels_b->pack(op.panels_b->source, p0, kc, j, cols, kNR, dst);
    else if (op.trans_b)
      transpose_panel<kNR>(op.b + j * op.ldb + p0, op.ldb, kc, cols, dst);
    else
      copy_panel<kNR>(op.b + p0 * op.ldb + j, op.ldb, kc, cols, dst);
  }
}

// micro_kernel<1> ... micro_kernel<kNV>, indexed by the number of vectors a panel needs.
template <bool Packed, std::size_t... I>
constexpr auto kernel_table(std::index_sequence<I...>) {
  return std::array{&micro_kernel<I + 1, Packed>...};
}
template <bool Packed>
constexpr auto kKernels = kernel_table<Packed>(std::make_index_sequence<kNV>{});

// One MR x NR tile of C, or a narrower one at the bottom or right edge of C: the kernel still
// computes a whole MR-row tile of the needed width (the padding in the panels is zero), into a
// scratch tile, and only the rows and columns that exist are added to C.
template <bool Packed>
void tile(std::size_t mr, std::size_t nr, std::size_t kc, const float* a, const float* b, Strides s,
          float* c, std::size_t ldc, bool accumulate) {
  const std::size_t vectors = (nr + kW - 1) / kW;
  if (mr == kMR && nr == vectors * kW) {  // at most narrower: the kernel can write C directly
    kKernels<Packed>[vectors - 1](kc, a, b, s, c, ldc, accumulate);
    return;
  }
  alignas(64) float scratch[kMR * kNR];
  kKernels<Packed>[vectors - 1](kc, a, b, s, scratch, kNR, false);
  for (std::size_t i = 0; i < mr; ++i)
    for (std::size_t j = 0; j < nr; ++j)
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + scratch[i * kNR + j] : scratch[i * kNR + j];
}

// C block (+)= packed A block x packed B block, one micro-kernel call per tile; a last column
// panel of at most kNarrowCols columns by narrow_kernel (gemm_kernel.hpp), four row panels a
// call, where the build has it (the conv VAE's 196-column chunks: 4 x 48 + 4).
void macro_kernel(std::size_t mc, std::size_t nc, std::size_t kc, const float* ap, const float* bp,
                  float* c, std::size_t ldc, bool accumulate) {
  for (std::size_t jr = 0; jr < nc; jr += kNR) {
    const std::size_t nr = std::min(kNR, nc - jr);
    std::size_t ir = 0;
#if defined(__AVX512F__)
    if (nr <= kNarrowCols)
      for (; ir + 4 * kMR <= mc; ir += 4 * kMR)
        narrow_kernel<4>(kc, ap + ir * kc, kMR * kc, bp + jr * kc, nr, c + ir * ldc + jr, ldc, accumulate);
#endif
    for (; ir < mc; ir += kMR) {
      const std::size_t mr = std::min(kMR, mc - ir);
      float* ct = c + ir * ldc + jr;
      if (mr == kMR && nr == kNR)
        micro_kernel<kNV, true>(kc, ap + ir * kc, bp + jr * kc, {}, ct, ldc, accumulate);
      else
        tile<true>(mr, nr, kc, ap + ir * kc, bp + jr * kc, {}, ct, ldc, accumulate);
    }
  }
}

// Which operands a thin product reads in place instead of packing them. Packing an element
// costs a read and a write, paid back only if the kernel then reads it many times: op(A) is
// read once per column panel of C and op(B) once per row panel. So A is read in place when C
// has at most two column panels (the VAE's 20- and 40-wide heads), and B, if stored
// untransposed (its panels' rows are then contiguous), when C has at most eight row panels
// (dW = Gᵀ X of those heads). Measured on AVX2: packing X for the 20 rows of dW of a head
// took about as long as the multiply-adds.
struct Direct {
  bool a = false, b = false;
};

Direct direct_operands(bool trans_b, std::size_t m, std::size_t n) {
  return {n <= 2 * kNR, !trans_b && m <= 8 * kMR};
}

// The same as macro_kernel for rows [i0, i0 + mc) x columns [j0, j0 + nc) x steps
// [p0, p0 + kc), reading A (if d.a) or B (if d.b) in place and the other from its packed block.
// A panel of A or B at the edge of C, whose missing rows or columns the kernel must not read,
// is packed on the stack first.
void macro_kernel_direct(const Operands& op, Direct d, std::size_t i0, std::size_t mc, std::size_t j0,
                         std::size_t nc, std::size_t p0, std::size_t kc, const float* ap, const float* bp,
                         float* c, std::size_t ldc, bool accumulate) {
  alignas(64) float edge_a[kMR * kMaxKC + kPackSlack];
  alignas(64) float edge_b[kNR * kMaxKC + kPackSlack];
  const std::size_t edge_jr = nc / kNR * kNR;  // the narrower last column panel, if any
  if (d.b && edge_jr < nc) pack_b(op, j0 + edge_jr, nc - edge_jr, p0, kc, edge_b);
  for (std::size_t ir = 0; ir < mc; ir += kMR) {
    const std::size_t mr = std::min(kMR, mc - ir), i = i0 + ir;
    const float* a = ap + ir * kc;
    Strides s{1, kMR, kNR};
    if (d.a && mr < kMR) {
      pack_a(op, i, mr, p0, kc, edge_a);
      a = edge_a;
    } else if (d.a) {
      a = op.trans_a ? op.a + p0 * op.lda + i : op.a + i * op.lda + p0;
      s.a_row = op.trans_a ? 1 : op.lda;
      s.a_step = op.trans_a ? op.lda : 1;
    }
    for (std::size_t jr = 0; jr < nc; jr += kNR) {
      const std::size_t nr = std::min(kNR, nc - jr);
      const float* b = bp + jr * kc;
      s.b_step = kNR;
      if (d.b && nr < kNR) {
        b = edge_b;
      } else if (d.b) {
        b = op.b + p0 * op.ldb + j0 + jr;
        s.b_step = op.ldb;
      }
      tile<false>(mr, nr, kc, a, b, s, c + ir * ldc + jr, ldc, accumulate);
    }
  }
}

// How the K range and the columns are cut into blocks.
struct Blocks {
  std::size_t k, k_blocks, max_kc, max_nc;

  Blocks(std::size_t n, std::size_t k_) : k(k_) {
    // Equal K blocks (784 = 3 x 262 rather than 2 x 384 + 16): no short, inefficient last block.
    k_blocks = (k + kMaxKC - 1) / kMaxKC;
    max_kc = (k + k_blocks - 1) / k_blocks;
    // B blocks as wide as fit kBBlockBytes, all about the same width (no thin last block).
    const std::size_t fit = std::max(kNR, kBBlockBytes / (max_kc * sizeof(float)) / kNR * kNR);
    const std::size_t n_blocks = (n + fit - 1) / fit;
    max_nc = round_up((n + n_blocks - 1) / n_blocks, kNR);
  }
  // The first step of K block kb (kb = k_blocks gives k).
  std::size_t k_begin(std::size_t kb) const { return k * kb / k_blocks; }
};

// One thread's share: C[m0, m1) x [n0, n1) = beta C + op(A) op(B) over the whole K range.
// packed_a: op(A) already packed whole by gemm_pack_a (then m0 = 0), or null to pack it here.
void gemm_rect(const Operands& op, Direct d, std::size_t m0, std::size_t m1, std::size_t n0, std::size_t n1,
               std::size_t k, float beta, float* c, std::size_t ldc, const float* packed_a = nullptr) {
  if (beta != 0.0F && beta != 1.0F)  // any other beta (the framework uses only 0 and 1)
    for (std::size_t i = m0; i < m1; ++i)
      for (std::size_t j = n0; j < n1; ++j) c[i * ldc + j] *= beta;
  const Blocks blocks(n1 - n0, k);
  const std::size_t max_mc = std::min(kMC, m1 - m0);
  // Each buffer is sized once for its largest block, so it grows at most once per shape.
  float* ap = packed_a ? nullptr : t_packed_a.get(round_up(max_mc, kMR) * blocks.max_kc);
  float* bp = t_packed_b.get(blocks.max_nc * blocks.max_kc);
  const std::size_t k_blocks = blocks.k_blocks, max_nc = blocks.max_nc;

  // A B block as wide as the rectangle (a batch of 128 columns) is packed once per K block, not
  // again for every A block of the rows (the conv VAE's 3136-row products: 4 blocks a thread).
  const bool one_b_block = n1 - n0 <= max_nc;
  for (std::size_t kb = 0; kb < k_blocks; ++kb) {
    const std::size_t p0 = blocks.k_begin(kb), kc = blocks.k_begin(kb + 1) - p0;
    const bool accumulate = kb > 0 || beta != 0.0F;
    if (one_b_block && !d.b) pack_b(op, n0, n1 - n0, p0, kc, bp);
    for (std::size_t i0 = m0; i0 < m1; i0 += max_mc) {
      const std::size_t mc = std::min(max_mc, m1 - i0);
      const float* a_panels = packed_a ? packed_a + round_up(m1, kMR) * p0 + i0 * kc : ap;
      if (!packed_a && !d.a) pack_a(op, i0, mc, p0, kc, ap);
      for (std::size_t j0 = n0; j0 < n1; j0 += max_nc) {
        const std::size_t nc = std::min(max_nc, n1 - j0);
        if (!one_b_block && !d.b) pack_b(op, j0, nc, p0, kc, bp);
        if (d.a || d.b)
          macro_kernel_direct(op, d, i0, mc, j0, nc, p0, kc, a_panels, bp, c + i0 * ldc + j0, ldc, accumulate);
        else
          macro_kernel(mc, nc, kc, a_panels, bp, c + i0 * ldc + j0, ldc, accumulate);
      }
    }
  }
}

// How C is cut between threads: `parts` equal slices of rows (by_rows) or of columns, in
// units of whole row panels (MR) or whole vectors (W) so no padding is added by the cut.
struct Plan {
  int parts = 1;
  bool by_rows = true;
  std::size_t units = 1, unit = 1;  // the cut dimension holds `units` slices of `unit`

  // Elements [begin, end) of the cut dimension (of length `size`) for one part.
  std::pair<std::size_t, std::size_t> range(int part, std::size_t size) const {
    const std::size_t u0 = units * part / parts, u1 = units * (part + 1) / parts;
    return {std::min(size, u0 * unit), std::min(size, u1 * unit)};
  }
};

// Picks the cut with the smallest estimated time of the slowest part: its multiply-adds
// (padding included) plus its packing, where the operand along the uncut dimension is packed
// whole by every part, plus kColumnCutCost for a cut by columns. (Packing the shared operand
// once, a share by each thread, then multiplying, took two hand-offs to the pool per block
// and had each core read the other's half from its cache: on the Xeon, dX = G W of the
// VAE's out layer took 280 us that way against 225 us with each thread packing all of W, and
// dW = Gᵀ X of encoder.0 210 against 190.) The choice depends only on the
// shape and thread count (and the result on neither: see the top of this file).
Plan plan_threads(std::size_t m, std::size_t n, std::size_t k, int threads) {
  const std::size_t row_units = (m + kMR - 1) / kMR, col_units = (n + kW - 1) / kW;
  const double work = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  if (threads <= 1 || work < kMinParallelWork) return {};
  const double dm = static_cast<double>(m), dn = static_cast<double>(n),
               dk = static_cast<double>(k);
  Plan best;
  double best_cost = 0;
  for (const bool by_rows : {true, false}) {
    const std::size_t units = by_rows ? row_units : col_units;
    const int parts =
        static_cast<int>(std::min<std::size_t>(units, static_cast<std::size_t>(threads)));
    const double share =
        static_cast<double>((units + parts - 1) / parts);  // units of the largest part
    const double rows = by_rows ? share * kMR : static_cast<double>(row_units * kMR);
    const double cols = by_rows ? static_cast<double>(col_units * kW) : share * kW;
    const double cost = rows * cols * dk +
                        kPackCost * dk * (by_rows ? share * kMR + dn : dm + cols) +
                        (by_rows ? 0.0 : kColumnCutCost * dm * (parts - 1));
    if (best_cost == 0 || cost < best_cost) {
      best = {parts, by_rows, units, by_rows ? kMR : kW};
      best_cost = cost;
    }
  }
  return best;
}

// A product with nothing to add (k == 0) leaves C = beta C, reading no A or B. Whether it was one.
bool scaled_only(std::size_t m, std::size_t n, std::size_t k, float beta, float* c, std::size_t ldc) {
  if (k != 0) return false;
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0F ? 0.0F : beta * c[i * ldc + j];
  return true;
}

// y[m, n] = the transpose of yt[n, m], columns [j0, j1) of y (rows of yt): W x W blocks in
// registers (gemm_transpose.hpp), the edges element by element. With Relu, max(value, 0) as
// std::max gives it (v < 0 ? 0 : v: -0 and NaN stay), so a fused ReLU has the bits of relu's.
template <bool Relu>
void transpose_into(const float* yt, std::size_t m, std::size_t n, std::size_t j0, std::size_t j1, float* y) {
  const auto clamp = [](const Vec& v) { return Relu ? xsimd::select(v < Vec(0.0F), Vec(0.0F), v) : v; };
  const auto clamp1 = [](float v) { return Relu ? std::max(v, 0.0F) : v; };
  const std::size_t m_blocks = m / kW * kW, j_blocks = j0 + (j1 - j0) / kW * kW;
  for (std::size_t i = 0; i < m_blocks; i += kW) {
    for (std::size_t j = j0; j < j_blocks; j += kW) {
      Vec v[kW];
      for (std::size_t r = 0; r < kW; ++r) v[r] = Vec::load_unaligned(yt + (j + r) * m + i);
      transpose_block<kW>(v);
      for (std::size_t q = 0; q < kW; ++q) clamp(v[q]).store_unaligned(y + (i + q) * n + j);
    }
    for (std::size_t q = i; q < i + kW; ++q)
      for (std::size_t j = j_blocks; j < j1; ++j) y[q * n + j] = clamp1(yt[j * m + q]);
  }
  for (std::size_t i = m_blocks; i < m; ++i)
    for (std::size_t j = j0; j < j1; ++j) y[i * n + j] = clamp1(yt[j * m + i]);
}

// How many parts a product of m x n x k cut into `units` slices runs as: one per thread (at
// most one per slice), or one when it is too small to share.
int slice_parts(std::size_t m, std::size_t n, std::size_t k, std::size_t units) {
  const double work = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  return num_threads() <= 1 || work < kMinParallelWork
             ? 1
             : static_cast<int>(std::min<std::size_t>(units, static_cast<std::size_t>(num_threads())));
}

// A product computed transposed, Cᵀ [n, m] = op(A) op(B) with n rows, then transposed into C
// [m, n] (gemm_linear_transposed). The threads cut Cᵀ by rows, in whole
// row panels (MR rows: whole register tiles, and the most even cut: 400 rows go 200 / 200, where
// whole vectors gave 208 / 192), each thread running all three steps for its own rows: priming
// them (prime, or nothing), multiplying over the whole K range (beta 1 after a prime, else 0),
// then transposing them into its columns of C while they are still in its core's cache. One
// hand-off to the pool for the lot. Each packs all of op(B) for itself: sharing that packing
// would cost a hand-off to the pool per K block, and packing op(B) (the batch's side) is a few
// percent of the product.
template <class Prime>
void transposed_product(const Operands& op, Direct d, std::size_t m, std::size_t n, std::size_t k, float* ct,
                        float* c, bool relu, const Prime& prime) {
  const std::size_t units = (n + kMR - 1) / kMR;
  const int parts = slice_parts(m, n, k, units);
  parallel_run(parts, [&](int part) {
    const auto p = static_cast<std::size_t>(part), q = static_cast<std::size_t>(parts);
    const std::size_t j0 = std::min(n, units * p / q * kMR), j1 = std::min(n, units * (p + 1) / q * kMR);
    if (j0 == j1) return;
    const bool primed = prime(j0, j1);
    if (k > 0) gemm_rect(op, d, j0, j1, 0, m, k, primed ? 1.0F : 0.0F, ct, m);
    (relu ? transpose_into<true> : transpose_into<false>)(ct, m, n, j0, j1, c);
  });
}

}  // namespace
}  // namespace gemm_detail

const char* gemm_name() { return "built-in"; }

// Yᵀ [n, m] = W Xᵀ: op(A) = W read in place (Direct::a), op(B) = Xᵀ packed from X's rows, so
// each thread reads only its own rows of W. (The cut by columns before, whole NR panels each,
// gave batch 128's three 48-, 48- and 32-wide panels to the threads as 48 and 80 columns, and
// all of a batch of 48 or fewer to one thread.)
void gemm_linear_transposed(std::size_t m, std::size_t n, std::size_t k, const float* x, const float* w,
                            const float* bias, float* yt, float* y, bool relu) {
  using namespace gemm_detail;
  if (m == 0 || n == 0) return;
  // Yᵀ's rows start as the bias, the first term of every sum as in y (k == 0: no product to
  // overwrite them, so they are the bias or 0).
  transposed_product({false, true, w, k, x, k}, {true, false}, m, n, k, yt, y, relu,
                     [&](std::size_t j0, std::size_t j1) {
                       if (bias || k == 0)
                         for (std::size_t j = j0; j < j1; ++j) std::fill_n(yt + j * m, m, bias ? bias[j] : 0.0F);
                       return bias != nullptr;
                     });
}

// C = A B cut between the threads by C's columns, in whole vectors (with AVX-512's 16 floats
// and rows on cache lines, no two threads write one line): each thread packs only its columns
// of B (the weight) and reads A (the batch's gradient) in place, so nothing is packed twice,
// and C is written where it lies. Taken transposed before (Cᵀ = Bᵀ Aᵀ cut by rows, then
// transposed into C), each thread packed all of Aᵀ and C went through a transpose of its own.
// Each element's sum runs over the same K blocks in the same order whether A is read in place
// or packed, so C has gemm's bits. On one thread the plain product (both operands packed) is as
// fast, and it is the same code as before.
void gemm_linear_input_grad(std::size_t m, std::size_t n, std::size_t k, const float* a, const float* b, float* c) {
  using namespace gemm_detail;
  if (m == 0 || n == 0) return;
  const std::size_t units = (n + kW - 1) / kW;
  const int parts = slice_parts(m, n, k, units);
  if (parts == 1) {  // (also k = 0: no work to share)
    gemm(false, false, m, n, k, a, k, b, n, 0.0F, c, n);
    return;
  }
  const Operands op{false, false, a, k, b, n};
  const Plan plan{parts, false, units, kW};
  parallel_run(parts, [&](int part) {
    const auto [j0, j1] = plan.range(part, n);
    gemm_rect(op, {true, false}, 0, m, j0, j1, k, 0.0F, c, n);
  });
}

// The packed layout is gemm_rect's: for each K block (the same blocks, which depend on k only),
// the MR-row panels of all m rows.
std::size_t gemm_packed_a_floats(std::size_t m, std::size_t k) {
  using namespace gemm_detail;
  return round_up(m, kMR) * k + kPackSlack;
}

void gemm_pack_a(bool trans_a, std::size_t m, std::size_t k, const float* a, std::size_t lda, float* packed) {
  using namespace gemm_detail;
  const Operands op{trans_a, false, a, lda, nullptr, 0};
  const Blocks blocks(1, k);
  for (std::size_t kb = 0; kb < blocks.k_blocks; ++kb) {
    const std::size_t p0 = blocks.k_begin(kb), kc = blocks.k_begin(kb + 1) - p0;
    pack_a(op, 0, m, p0, kc, packed + round_up(m, kMR) * p0);
  }
}

void gemm_prepacked_a(std::size_t m, std::size_t n, std::size_t k, const float* packed_a, bool trans_b,
                      const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
  using namespace gemm_detail;
  if (m == 0 || n == 0 || scaled_only(m, n, k, beta, c, ldc)) return;
  const Operands op{false, trans_b, nullptr, 0, b, ldb};
  Direct d = direct_operands(trans_b, m, n);
  d.a = false;  // A is packed already
  gemm_rect(op, d, 0, m, 0, n, k, beta, c, ldc, packed_a);
}

bool gemm_packs_b(std::size_t m, std::size_t n) { return !gemm_detail::direct_operands(false, m, n).b; }

// op(B)'s panels come from the caller, so B is never read in place (Direct::b); A may be, by
// the same rule as gemm's.
void gemm_prepacked_a_panels_b(std::size_t m, std::size_t n, std::size_t k, const float* packed_a,
                               const PanelSource& b, float beta, float* c, std::size_t ldc, float* /*plain_b*/) {
  using namespace gemm_detail;
  if (m == 0 || n == 0 || scaled_only(m, n, k, beta, c, ldc)) return;
  const Operands op{false, false, nullptr, 0, nullptr, 0, &b};
  gemm_rect(op, {}, 0, m, 0, n, k, beta, c, ldc, packed_a);
}

void gemm_panels_b(bool trans_a, std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda,
                   const PanelSource& b, float beta, float* c, std::size_t ldc, float* /*plain_b*/) {
  using namespace gemm_detail;
  if (m == 0 || n == 0 || scaled_only(m, n, k, beta, c, ldc)) return;
  const Operands op{trans_a, false, a, lda, nullptr, 0, &b};
  const Direct d = direct_operands(true, m, n);  // (true: B is not read in place)
  gemm_rect(op, d, 0, m, 0, n, k, beta, c, ldc);
}

void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, const float* a,
          std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
  using namespace gemm_detail;
  if (m == 0 || n == 0 || scaled_only(m, n, k, beta, c, ldc)) return;
  const Operands op{trans_a, trans_b, a, lda, b, ldb};
  const Plan plan = plan_threads(m, n, k, num_threads());
  const Direct d = direct_operands(trans_b, m, n);
  if (plan.parts == 1) {
    gemm_rect(op, d, 0, m, 0, n, k, beta, c, ldc);
    return;
  }
  parallel_run(plan.parts, [&](int part) {
    if (plan.by_rows) {
      const auto [m0, m1] = plan.range(part, m);
      gemm_rect(op, d, m0, m1, 0, n, k, beta, c, ldc);
    } else {
      const auto [n0, n1] = plan.range(part, n);
      gemm_rect(op, d, 0, m, n0, n1, k, beta, c, ldc);
    }
  });
}

}  // namespace ag
