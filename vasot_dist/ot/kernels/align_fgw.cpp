// align_fgw on CPU, dense batch, the published balanced branch: the whole solve of one pair of videos per
// OpenMP task, its (N1, M1) state in L2 for all iterations.
//
// The same iteration as vasot_dist/ot/fgw.py (_start, _balanced_step with rows first), written out so that one
// problem's iterations run back to back in cache.  tests/ot/test_ot_cpu_kernels.py holds it to the
// compiled/eager path's plans.
//
// Constants are substituted by vasot_dist/ot/_cpu_kernels.py: N, M real frames; VIRTUAL (1: a virtual frame of
// cost ZETA prepended to both sides, 0: none); WX, WY band widths of Cx (rows) and Cy (columns), each 1..16;
// EPS, ALPHA, RHO (temporal prior), INV_R = 1 / radius, INNER Sinkhorn passes per iteration.
#include <torch/csrc/inductor/cpp_prefix.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <vector>

namespace {
constexpr int64_t N = @N@, M = @M@, VIRTUAL = @VIRTUAL@, WX = @WX@, WY = @WY@, INNER = @INNER@;
constexpr float EPS = @EPS@f, ALPHA = @ALPHA@f, RHO = @RHO@f, INV_R = @INV_R@f, ZETA = @ZETA@f;
constexpr int64_t N1 = N + VIRTUAL, M1 = M + VIRTUAL;  // the solved problem: virtual frame at index 0
using Vec = at::vec::Vectorized<float>;
constexpr int64_t V = Vec::size();
constexpr int64_t MV = M1 - M1 % V;  // columns handled by full vectors; the rest one by one

float reduce_sum(Vec v) { return at::vec::vec_reduce_all<float>([](Vec& a, Vec& b) { return a + b; }, v); }
float reduce_max(Vec v) {
  return at::vec::vec_reduce_all<float>([](Vec& a, Vec& b) { return at::vec::maximum(a, b); }, v);
}

struct Scratch {
  // lin: (1 - alpha) C_hat; e: the plan's exponentials, T = e * scale (per column); u: the rows' T Cy, padded by
  // WX zero rows on each side; z: log K + log u (the log-domain plan before the columns' normalisation)
  std::vector<float> lin, e, u, z, pad, scale, colmax, colsum, log_v, log_u;
  Scratch()
      : lin(N1 * M1), e(N1 * M1), u((N1 + 2 * WX) * M1, 0.f), z(N1 * M1), pad(M1 + 2 * WY, 0.f), scale(M1),
        colmax(M1), colsum(M1), log_v(M1), log_u(N1) {}
};

// log K = -(alpha Cx (T Cy) + (1 - alpha) C_hat) / eps, with T Cy = rowsum - (band of T along columns) and
// Cx the band along rows times 1 / r; written to z
void log_kernel(Scratch& s) {
  for (int64_t i = 0; i < N1; ++i) {  // u = T Cy, row by row
    const float* er = s.e.data() + i * M1;
    float* pr = s.pad.data() + WY;
    Vec acc(0.f);
    int64_t j = 0;
    for (; j < MV; j += V) {
      Vec t = Vec::loadu(er + j) * Vec::loadu(&s.scale[j]);
      t.store(pr + j);
      acc += t;
    }
    float total = reduce_sum(acc);
    for (; j < M1; ++j) {
      pr[j] = er[j] * s.scale[j];
      total += pr[j];
    }
    float* ur = s.u.data() + (i + WX) * M1;
    j = 0;
    for (; j < MV; j += V) {
      Vec band = Vec::loadu(&s.pad[j]);
      for (int64_t d = 1; d <= 2 * WY; ++d) {
        if (d != WY) band += Vec::loadu(&s.pad[j + d]);
      }
      (Vec(total) - band).store(ur + j);
    }
    for (; j < M1; ++j) {
      float band = 0.f;
      for (int64_t d = 0; d <= 2 * WY; ++d) {
        if (d != WY) band += s.pad[j + d];
      }
      ur[j] = total - band;
    }
  }
  for (int64_t i = 0; i < N1; ++i) {  // Cx u: rows i + d of the padded u, the centre row left out
    const float* lr = s.lin.data() + i * M1;
    float* zr = s.z.data() + i * M1;
    int64_t j = 0;
    for (; j < MV; j += V) {
      Vec gw = Vec::loadu(&s.u[i * M1 + j]);
      for (int64_t d = 1; d <= 2 * WX; ++d) {
        if (d != WX) gw += Vec::loadu(&s.u[(i + d) * M1 + j]);
      }
      ((Vec::loadu(lr + j) + gw * Vec(INV_R) * Vec(ALPHA)) * Vec(-1.f / EPS)).store(zr + j);
    }
    for (; j < M1; ++j) {
      float gw = 0.f;
      for (int64_t d = 0; d <= 2 * WX; ++d) {
        if (d != WX) gw += s.u[(i + d) * M1 + j];
      }
      zr[j] = (lr[j] + gw * INV_R * ALPHA) * (-1.f / EPS);
    }
  }
}

// log u_i = log p - LSE_j (z_ij + log v_j), then z_ij += log u_i (z holds log K on entry)
void rows_update(Scratch& s, float log_p, bool with_v) {
  for (int64_t i = 0; i < N1; ++i) {
    float* zr = s.z.data() + i * M1;
    Vec vmax(-INFINITY);
    float rmax = -INFINITY;
    int64_t j = 0;
    for (; j < MV; j += V) {
      Vec x = Vec::loadu(zr + j);
      if (with_v) x += Vec::loadu(&s.log_v[j]);
      vmax = at::vec::maximum(vmax, x);
    }
    for (; j < M1; ++j) rmax = std::max(rmax, zr[j] + (with_v ? s.log_v[j] : 0.f));
    rmax = std::max(rmax, reduce_max(vmax));
    Vec vsum(0.f);
    float rsum = 0.f;
    j = 0;
    for (; j < MV; j += V) {
      Vec x = Vec::loadu(zr + j);
      if (with_v) x += Vec::loadu(&s.log_v[j]);
      vsum += (x - Vec(rmax)).exp();
    }
    for (; j < M1; ++j) rsum += std::exp(zr[j] + (with_v ? s.log_v[j] : 0.f) - rmax);
    const float lu = log_p - (rmax + std::log(rsum + reduce_sum(vsum)));
    s.log_u[i] = lu;
    j = 0;
    for (; j < MV; j += V) (Vec::loadu(zr + j) + Vec(lu)).store(zr + j);
    for (; j < M1; ++j) zr[j] += lu;
  }
}

// column maxima of z (+ log v when given) over rows
void column_max(Scratch& s) {
  std::fill(s.colmax.begin(), s.colmax.end(), -INFINITY);
  for (int64_t i = 0; i < N1; ++i) {
    const float* zr = s.z.data() + i * M1;
    int64_t j = 0;
    for (; j < MV; j += V) at::vec::maximum(Vec::loadu(&s.colmax[j]), Vec::loadu(zr + j)).store(&s.colmax[j]);
    for (; j < M1; ++j) s.colmax[j] = std::max(s.colmax[j], zr[j]);
  }
}

// e = exp(z - colmax) (kept when `keep`), and the column sums of e
void column_exp(Scratch& s, bool keep) {
  std::fill(s.colsum.begin(), s.colsum.end(), 0.f);
  for (int64_t i = 0; i < N1; ++i) {
    const float* zr = s.z.data() + i * M1;
    float* er = s.e.data() + i * M1;
    int64_t j = 0;
    for (; j < MV; j += V) {
      Vec x = (Vec::loadu(zr + j) - Vec::loadu(&s.colmax[j])).exp();
      if (keep) x.store(er + j);
      (Vec::loadu(&s.colsum[j]) + x).store(&s.colsum[j]);
    }
    for (; j < M1; ++j) {
      float x = std::exp(zr[j] - s.colmax[j]);
      if (keep) er[j] = x;
      s.colsum[j] += x;
    }
  }
}

// one balanced iteration: INNER log-domain Sinkhorn passes (rows first) on exp(log K); the plan is the last
// half-pass's exponentials, T = e * q / colsum (the scale is applied when T is next read)
void balanced_step(Scratch& s, float log_p, float log_q, float q) {
  log_kernel(s);
  for (int64_t it = 0; it < INNER; ++it) {
    rows_update(s, log_p, it > 0);
    if (it + 1 < INNER) {  // log v_j = log q - LSE_i z_ij: the next pass adds it (z keeps log K + log u)
      column_max(s);
      for (int64_t j = 0; j < M1; ++j) s.colmax[j] = std::max(s.colmax[j], -1e30f);
      column_exp(s, false);
      for (int64_t j = 0; j < M1; ++j) s.log_v[j] = log_q - (s.colmax[j] + std::log(s.colsum[j]));
      for (int64_t i = 0; i < N1; ++i) {  // back to log K: the next rows' update starts from it
        float* zr = s.z.data() + i * M1;
        const float lu = s.log_u[i];
        for (int64_t j = 0; j < M1; ++j) zr[j] -= lu;
      }
    }
  }
  column_max(s);
  for (int64_t j = 0; j < M1; ++j) s.colmax[j] = std::max(s.colmax[j], -1e30f);
  column_exp(s, true);
  for (int64_t j = 0; j < M1; ++j) s.scale[j] = q / std::max(s.colsum[j], FLT_MIN);
}
}  // namespace

// cost: (B, N, M); plan: (B, N1, M1) output, T scaled by N1 (the reference's T * nnz, virtual frame counted)
extern "C" void kernel(const float* cost, float* plan, int64_t batch, int64_t n_iters) {
#pragma omp parallel
  {
    Scratch s;
    // the marginals as the Python solver builds them: exp(-log count), uniform, the virtual frame counted
    const float log_p = -std::log(static_cast<float>(N1)), log_q = -std::log(static_cast<float>(M1));
    const float q = std::exp(log_q);
    const float t0 = std::exp(log_p + log_q);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < batch; ++b) {
      const float* c = cost + b * N * M;
      for (int64_t i = 0; i < N1; ++i) {
        const float pos_i = static_cast<float>(i - VIRTUAL) / static_cast<float>(N);
        for (int64_t j = 0; j < M1; ++j) {
          float value = ZETA;
          if (i >= VIRTUAL && j >= VIRTUAL) {
            const float prior = std::abs(pos_i - static_cast<float>(j - VIRTUAL) / static_cast<float>(M));
            value = c[(i - VIRTUAL) * M + (j - VIRTUAL)] + RHO * prior;
          }
          s.lin[i * M1 + j] = value * (1.f - ALPHA);
        }
      }
      std::fill(s.e.begin(), s.e.end(), t0);
      std::fill(s.scale.begin(), s.scale.end(), 1.f);
      for (int64_t it = 0; it < n_iters; ++it) balanced_step(s, log_p, log_q, q);
      float* out = plan + b * N1 * M1;
      for (int64_t i = 0; i < N1; ++i) {
        for (int64_t j = 0; j < M1; ++j) out[i * M1 + j] = s.e[i * M1 + j] * s.scale[j] * static_cast<float>(N1);
      }
    }
  }
}
