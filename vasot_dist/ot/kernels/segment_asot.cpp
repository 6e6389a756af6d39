// segment_asot on CPU, dense batch, the authors' default branch (frames balanced, actions KL-penalised):
// the whole solve of one video per OpenMP task, its (K, N) state in L1/L2 for all iterations.
//
// The same iteration as vasot_dist/ot/fgw.py (_start, _initial_step, _mirror_step, in the transposed actions x
// frames layout segment_asot solves), written out so that one problem's 25 iterations run back to back in
// cache: no pass over the batch per operation, no barrier per loop, no Python between iterations.
// tests/ot/test_ot_cpu_kernels.py holds it to the compiled/eager path's plans.
//
// Constants are substituted by vasot_dist/ot/_cpu_kernels.py: K actions, N frames, W band width (1 <= W <= 16),
// EPS, ALPHA, RHO (temporal prior), INV_R = 1 / radius, LAMBDA (actions' KL weight).
#include <torch/csrc/inductor/cpp_prefix.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <vector>

namespace {
constexpr int64_t K = @K@, N = @N@, W = @W@, NP = N + 2 * W;
constexpr float EPS = @EPS@f, ALPHA = @ALPHA@f, RHO = @RHO@f, INV_R = @INV_R@f, LAMBDA = @LAMBDA@f;
using Vec = at::vec::Vectorized<float>;
constexpr int64_t V = Vec::size();
constexpr int64_t NV = N - N % V;  // frames handled by full vectors; the rest one by one

struct Scratch {
  std::vector<float> lin, t, lt, band, pad, colband, colmax, aux, scale, kl;
  Scratch()
      : lin(K * N), t(K * N), lt(K * N), band(K * N), pad(NP, 0.f), colband(N), colmax(N), aux(N), scale(N),
        kl(K) {}
};

// gradient of the fused objective at T (docs/methods.md, ASOT) at action k (o = k N), frames n..n+V-1 or n:
// (1 - alpha) C_hat + alpha (Ca T Cv) + eps log(T + 1e-12) + lambda (log(rowsum / p + 1e-12) + 1)
inline Vec grad_vec(const Scratch& s, int64_t o, int64_t n, Vec kl) {
  Vec gw = (Vec::loadu(&s.colband[n]) - Vec::loadu(&s.band[o + n])) * Vec(INV_R);
  return Vec::loadu(&s.lin[o + n]) + gw * Vec(ALPHA) + (Vec::loadu(&s.t[o + n]) + Vec(1e-12f)).log() * Vec(EPS) + kl;
}
inline float grad_one(const Scratch& s, int64_t o, int64_t n, float kl) {
  float gw = (s.colband[n] - s.band[o + n]) * INV_R;
  return s.lin[o + n] + gw * ALPHA + std::log(s.t[o + n] + 1e-12f) * EPS + kl;
}

// Ca (T Cv) / r without the 1/r: per action the band sum of T along frames (1 <= |n - n'| <= W), minus it from
// the column total over actions; also each action's mass (its KL term).
void band_and_kl(Scratch& s, const float* p) {
  std::fill(s.colband.begin(), s.colband.end(), 0.f);
  for (int64_t k = 0; k < K; ++k) {
    const float* row = s.t.data() + k * N;
    float* bk = s.band.data() + k * N;
    std::copy(row, row + N, s.pad.begin() + W);
    Vec mass(0.f);
    int64_t n = 0;
    for (; n < NV; n += V) {
      mass += Vec::loadu(row + n);
      Vec acc = Vec::loadu(s.pad.data() + n);
      for (int64_t d = 1; d <= 2 * W; ++d) {
        if (d != W) acc += Vec::loadu(s.pad.data() + n + d);
      }
      acc.store(bk + n);
      (Vec::loadu(s.colband.data() + n) + acc).store(s.colband.data() + n);
    }
    float total = at::vec::vec_reduce_all<float>([](Vec& a, Vec& b) { return a + b; }, mass);
    for (; n < N; ++n) {
      total += row[n];
      float acc = 0.f;
      for (int64_t d = 0; d <= 2 * W; ++d) {
        if (d != W) acc += s.pad[n + d];
      }
      bk[n] = acc;
      s.colband[n] += acc;
    }
    s.kl[k] = LAMBDA * (std::log(total / std::max(p[k], FLT_MIN) + 1e-12f) + 1.f);
  }
}

// eta = 4 / max(grad) at T0 (max |grad| if that is <= 0; 1 if not finite; denominator floored at 1e-12)
float step_size(Scratch& s, const float* p) {
  band_and_kl(s, p);
  float gmax = -INFINITY, gabs = 0.f;
  Vec vmax(-INFINITY), vabs(0.f);
  for (int64_t k = 0; k < K; ++k) {
    const int64_t o = k * N;
    const Vec vkl(s.kl[k]);
    int64_t n = 0;
    for (; n < NV; n += V) {
      Vec g = grad_vec(s, o, n, vkl);
      vmax = at::vec::maximum(vmax, g);
      vabs = at::vec::maximum(vabs, g.abs());
    }
    for (; n < N; ++n) {
      float g = grad_one(s, o, n, s.kl[k]);
      gmax = std::max(gmax, g);
      gabs = std::max(gabs, std::abs(g));
    }
  }
  gmax = std::max(gmax, at::vec::vec_reduce_all<float>([](Vec& a, Vec& b) { return at::vec::maximum(a, b); }, vmax));
  gabs = std::max(gabs, at::vec::vec_reduce_all<float>([](Vec& a, Vec& b) { return at::vec::maximum(a, b); }, vabs));
  float denom = gmax > 0.f ? gmax : gabs;
  if (!std::isfinite(denom)) denom = 1.f;
  return 4.f / std::max(denom, 1e-12f);
}

// one mirror step: z = log T - eta grad, then each frame's column over actions rescaled to q (log-sum-exp)
void mirror_step(Scratch& s, const float* p, float q, float log_q, float eta) {
  band_and_kl(s, p);
  std::fill(s.colmax.begin(), s.colmax.end(), -INFINITY);
  const Vec veta(eta);
  for (int64_t k = 0; k < K; ++k) {
    const int64_t o = k * N;
    const Vec vkl(s.kl[k]);
    int64_t n = 0;
    for (; n < NV; n += V) {
      Vec z = Vec::loadu(&s.lt[o + n]) - veta * grad_vec(s, o, n, vkl);
      z.store(&s.band[o + n]);  // the band is spent: z takes its place
      at::vec::maximum(Vec::loadu(&s.colmax[n]), z).store(&s.colmax[n]);
    }
    for (; n < N; ++n) {
      float z = s.lt[o + n] - eta * grad_one(s, o, n, s.kl[k]);
      s.band[o + n] = z;
      s.colmax[n] = std::max(s.colmax[n], z);
    }
  }
  for (int64_t n = 0; n < N; ++n) {
    s.colmax[n] = std::max(s.colmax[n], -1e30f);
    s.aux[n] = 0.f;
  }
  for (int64_t k = 0; k < K; ++k) {  // e = exp(z - max), kept in T; its column sums
    const int64_t o = k * N;
    int64_t n = 0;
    for (; n < NV; n += V) {
      Vec e = (Vec::loadu(&s.band[o + n]) - Vec::loadu(&s.colmax[n])).exp();
      e.store(&s.t[o + n]);
      (Vec::loadu(&s.aux[n]) + e).store(&s.aux[n]);
    }
    for (; n < N; ++n) {
      float e = std::exp(s.band[o + n] - s.colmax[n]);
      s.t[o + n] = e;
      s.aux[n] += e;
    }
  }
  int64_t m = 0;
  for (; m < NV; m += V) {  // log T = z - (max + log sum - log q)
    Vec sum = at::vec::maximum(Vec::loadu(&s.aux[m]), Vec(FLT_MIN));
    (Vec(q) / sum).store(&s.scale[m]);
    (Vec::loadu(&s.colmax[m]) + sum.log() - Vec(log_q)).store(&s.aux[m]);
  }
  for (; m < N; ++m) {
    float sum = std::max(s.aux[m], FLT_MIN);
    s.scale[m] = q / sum;
    s.aux[m] = s.colmax[m] + std::log(sum) - log_q;
  }
  for (int64_t k = 0; k < K; ++k) {
    const int64_t o = k * N;
    int64_t n = 0;
    for (; n < NV; n += V) {
      (Vec::loadu(&s.t[o + n]) * Vec::loadu(&s.scale[n])).store(&s.t[o + n]);
      (Vec::loadu(&s.band[o + n]) - Vec::loadu(&s.aux[n])).store(&s.lt[o + n]);
    }
    for (; n < N; ++n) {
      s.t[o + n] *= s.scale[n];
      s.lt[o + n] = s.band[o + n] - s.aux[n];
    }
  }
}
}  // namespace

// cost: (B, N, K) visual cost; plan: (B, N, K) output, each frame's row summing to 1 (T scaled by N);
// step: eta for every problem, or <= 0 for 4 / max(grad) at T0.
extern "C" void kernel(const float* cost, float* plan, int64_t batch, int64_t n_iters, float step) {
#pragma omp parallel
  {
    Scratch s;
    // the marginals as the Python solver builds them: exp(-log count), uniform over actions and frames
    const float log_p = -std::log(static_cast<float>(K)), log_q = -std::log(static_cast<float>(N));
    const float p_k = std::exp(log_p), q_n = std::exp(log_q);
    std::vector<float> p(K, p_k);
    const float t0 = std::exp(log_p + log_q);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < batch; ++b) {
      const float* c = cost + b * N * K;
      for (int64_t n = 0; n < N; ++n) {  // transpose to actions x frames, temporal prior added
        const float pos_n = static_cast<float>(n) / static_cast<float>(N);
        for (int64_t k = 0; k < K; ++k) {
          const float prior = std::abs(pos_n - static_cast<float>(k) / static_cast<float>(K));
          s.lin[k * N + n] = (c[n * K + k] + RHO * prior) * (1.f - ALPHA);
        }
      }
      std::fill(s.t.begin(), s.t.end(), t0);
      std::fill(s.lt.begin(), s.lt.end(), log_p + log_q);
      const float eta = step > 0.f ? step : step_size(s, p.data());
      for (int64_t it = 0; it < n_iters; ++it) mirror_step(s, p.data(), q_n, log_q, eta);
      float* out = plan + b * N * K;
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t k = 0; k < K; ++k) out[n * K + k] = s.t[k * N + n] * static_cast<float>(N);
      }
    }
  }
}
