// Quadric-error edge-collapse simplification (Garland & Heckbert) for closed meshes, normals,
// and the one-pass bounding-box accumulator.
//
// Each vertex carries the sum of the (unweighted, unit-normal) plane quadrics of the original
// faces merged into it, so the quadric error of a position is the sum of squared distances to
// those planes and bounds the distance to each of them: collapses whose error exceeds
// max_error^2 are never made.  A collapse is also rejected when it would break the 2-manifold
// (link condition, valence-3 neighbours), flip or degenerate a face, or move a vertex that lies on
// the volume box off the box plane(s) it lies on (it may slide within them).
#include "mesher.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace ngshow::mesher {
namespace {

struct Quadric {
  double a[10] = {};  // xx xy xz xw yy yz yw zz zw ww
  void add_plane(double nx, double ny, double nz, double d) {
    a[0] += nx * nx; a[1] += nx * ny; a[2] += nx * nz; a[3] += nx * d;
    a[4] += ny * ny; a[5] += ny * nz; a[6] += ny * d;
    a[7] += nz * nz; a[8] += nz * d; a[9] += d * d;
  }
  Quadric& operator+=(const Quadric& o) {
    for (int i = 0; i < 10; ++i) a[i] += o.a[i];
    return *this;
  }
  double eval(double x, double y, double z) const {
    return a[0] * x * x + 2 * a[1] * x * y + 2 * a[2] * x * z + 2 * a[3] * x + a[4] * y * y +
           2 * a[5] * y * z + 2 * a[6] * y + a[7] * z * z + 2 * a[8] * z + a[9];
  }
  // Minimiser, if the 3x3 system is well conditioned.
  bool optimum(double& x, double& y, double& z) const {
    const double m00 = a[0], m01 = a[1], m02 = a[2], m11 = a[4], m12 = a[5], m22 = a[7];
    const double c0 = m11 * m22 - m12 * m12, c1 = m02 * m12 - m01 * m22, c2 = m01 * m12 - m02 * m11;
    const double det = m00 * c0 + m01 * c1 + m02 * c2;
    const double tr = m00 + m11 + m22;
    if (!(std::fabs(det) > 1e-6 * tr * tr * tr)) return false;
    const double inv = 1.0 / det;
    const double b0 = -a[3], b1 = -a[6], b2 = -a[8];
    const double i00 = c0, i01 = c1, i02 = c2;
    const double i11 = m00 * m22 - m02 * m02, i12 = m01 * m02 - m00 * m12;
    const double i22 = m00 * m11 - m01 * m01;
    x = (i00 * b0 + i01 * b1 + i02 * b2) * inv;
    y = (i01 * b0 + i11 * b1 + i12 * b2) * inv;
    z = (i02 * b0 + i12 * b1 + i22 * b2) * inv;
    return true;
  }
};

struct Entry {
  std::uint32_t u, v, vu, vv;  // edge and the endpoints' versions when it was queued
};

// Monotone priority queue on a logarithmic scale: costs relative to the limit fall into buckets of
// 1/8 octave (the float's exponent and top three mantissa bits), first in first out within a
// bucket.  Pops are O(1) instead of a binary heap's cache-missing sift-downs; the order only
// differs from exact cost order among costs within 9 % of each other.
class BucketQueue {
 public:
  static constexpr int kOctaves = 48;  // relative costs 2^-44 .. 2^4
  static constexpr int kBuckets = kOctaves * 8 + 2;
  void reset(double limit) {
    scale_ = limit > 0 ? 1.0 / limit : 0.0;
    for (auto& b : buckets_) b.items.clear(), b.head = 0;
    cur_ = kBuckets;
    size_ = 0;
  }
  void push(double cost, const Entry& e) {
    const int b = bucket(cost);
    buckets_[b].items.push_back(e);
    cur_ = std::min(cur_, b);
    ++size_;
  }
  bool pop(Entry& e) {
    if (size_ == 0) return false;
    while (buckets_[cur_].head == buckets_[cur_].items.size()) {
      buckets_[cur_].items.clear();
      buckets_[cur_].head = 0;
      ++cur_;
    }
    Bucket& b = buckets_[cur_];
    e = b.items[b.head++];
    --size_;
    return true;
  }

 private:
  int bucket(double cost) const {
    const float r = static_cast<float>(cost * scale_);
    if (!(r > 0x1p-44f)) return 0;
    if (!(r < 0x1p4f)) return kBuckets - 1;
    std::uint32_t bits;
    std::memcpy(&bits, &r, 4);
    // Exponent of 2^-44 is 127 - 44 = 83.
    return 1 + static_cast<int>((bits >> 20) - (83u << 3));
  }
  struct Bucket {
    std::vector<Entry> items;
    std::size_t head = 0;
  };
  Bucket buckets_[kBuckets];
  int cur_ = kBuckets;
  std::size_t size_ = 0;
  double scale_ = 0;
};

constexpr std::uint32_t kNone = 0xffffffffu;

class Simplifier {
 public:
  Simplifier(Mesh& m, const SimplifyOptions& opt) : m_(m), opt_(opt) {
    nv_ = m.vertices.size() / 3;
    nf_ = m.faces.size() / 3;
    pos_.resize(nv_ * 3);
    for (std::size_t i = 0; i < nv_ * 3; ++i) pos_[i] = m.vertices[i];
    F_.assign(m.faces.begin(), m.faces.end());
    Q_.resize(nv_);
    version_.assign(nv_, 0);
    dead_v_.assign(nv_, 0);
    dead_f_.assign(nf_, 0);
    flags_.assign(nv_, 0);
    head_.assign(nv_, kNone);
    next_.assign(nf_ * 3, kNone);
    mark_.assign(nv_, 0);
    double area_sum = 0;
    for (std::size_t f = 0; f < nf_; ++f) {
      double n[3];
      normal(F_[3 * f], F_[3 * f + 1], F_[3 * f + 2], nullptr, 0, n);
      const double len = std::sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
      area_sum += len;
      if (len > 0) {
        const double* p = &pos_[3 * F_[3 * f]];
        const double nx = n[0] / len, ny = n[1] / len, nz = n[2] / len;
        Quadric q;
        q.add_plane(nx, ny, nz, -(nx * p[0] + ny * p[1] + nz * p[2]));
        for (int k = 0; k < 3; ++k) Q_[F_[3 * f + k]] += q;
      }
      for (int k = 0; k < 3; ++k) {
        const std::uint32_t c = static_cast<std::uint32_t>(3 * f + k);
        next_[c] = head_[F_[c]];
        head_[F_[c]] = c;
      }
    }
    area_eps_ = nf_ ? 1e-6 * area_sum / static_cast<double>(nf_) : 0;
    // Flat regions give many zero-cost edges; without a tie-break the heap keeps popping the
    // edges just pushed around the last kept vertex, growing one hub whose collapses then keep
    // failing the flip test.  Shorter edges first spreads the collapses (the tie-break never
    // decides whether a collapse is allowed, only its order).
    double len2 = 0;
    for (std::size_t f = 0; f < nf_; ++f) {
      const double* a = &pos_[3 * F_[3 * f]];
      const double* b = &pos_[3 * F_[3 * f + 1]];
      len2 += (a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]);
    }
    const double mean_len2 = nf_ ? len2 / static_cast<double>(nf_) : 1.0;
    if (opt.lock_box) {
      for (std::size_t v = 0; v < nv_; ++v)
        for (int ax = 0; ax < 3; ++ax) {
          const double tol = 1e-4 * std::max(1.0, std::fabs(opt.box[3 + ax] - opt.box[ax]));
          if (std::fabs(pos_[3 * v + ax] - opt.box[ax]) <= tol) flags_[v] |= 1u << ax;
          if (std::fabs(pos_[3 * v + ax] - opt.box[3 + ax]) <= tol) flags_[v] |= 8u << ax;
        }
    }
    limit_ = opt.max_error * opt.max_error;
    queue_.reset(limit_);
    tie_ = mean_len2 > 0 ? 1e-3 * limit_ / mean_len2 : 0;
  }

  void run() {
    for (std::size_t f = 0; f < nf_; ++f)
      for (int k = 0; k < 3; ++k) {
        const std::uint32_t a = F_[3 * f + k], b = F_[3 * f + (k + 1) % 3];
        if (a < b) push(a, b);
      }
    Entry e;
    while (queue_.pop(e)) {
      if (dead_v_[e.u] || dead_v_[e.v] || version_[e.u] != e.vu || version_[e.v] != e.vv) continue;
      try_collapse(e.u, e.v);  // every entry was pushed with a cost within the limit
    }
    compact();
  }

 private:
  // Normal (unnormalised, = 2 * area) of face (a, b, c), with vertex `moved` at position p.
  void normal(std::uint32_t a, std::uint32_t b, std::uint32_t c, const double* p,
              std::uint32_t moved, double* n) const {
    const double* pa = (p && a == moved) ? p : &pos_[3 * a];
    const double* pb = (p && b == moved) ? p : &pos_[3 * b];
    const double* pc = (p && c == moved) ? p : &pos_[3 * c];
    const double e1[3] = {pb[0] - pa[0], pb[1] - pa[1], pb[2] - pa[2]};
    const double e2[3] = {pc[0] - pa[0], pc[1] - pa[1], pc[2] - pa[2]};
    n[0] = e1[1] * e2[2] - e1[2] * e2[1];
    n[1] = e1[2] * e2[0] - e1[0] * e2[2];
    n[2] = e1[0] * e2[1] - e1[1] * e2[0];
  }

  // Best position for collapsing (u, v); returns the cost, or +inf if not allowed.
  // keep: which endpoint index survives.
  double plan(std::uint32_t u, std::uint32_t v, double* p, std::uint32_t& keep) const {
    Quadric q = Q_[u];
    q += Q_[v];
    const std::uint32_t fu = flags_[u], fv = flags_[v];
    if (fu | fv) {
      double best = std::numeric_limits<double>::infinity();
      if ((fu & ~fv) == 0) {
        const double* x = &pos_[3 * v];
        best = q.eval(x[0], x[1], x[2]);
        p[0] = x[0]; p[1] = x[1]; p[2] = x[2];
        keep = v;
      }
      if ((fv & ~fu) == 0) {
        const double* x = &pos_[3 * u];
        const double c = q.eval(x[0], x[1], x[2]);
        if (c < best) {
          best = c;
          p[0] = x[0]; p[1] = x[1]; p[2] = x[2];
          keep = u;
        }
      }
      return best;
    }
    keep = v;
    const double* a = &pos_[3 * u];
    const double* b = &pos_[3 * v];
    double x, y, z;
    if (q.optimum(x, y, z)) {
      // Stay near the edge: an optimum far away means a near-singular (flat) system.
      const double dx = x - 0.5 * (a[0] + b[0]), dy = y - 0.5 * (a[1] + b[1]),
                   dz = z - 0.5 * (a[2] + b[2]);
      const double ex = a[0] - b[0], ey = a[1] - b[1], ez = a[2] - b[2];
      if (dx * dx + dy * dy + dz * dz <= 4 * (ex * ex + ey * ey + ez * ez)) {
        p[0] = x; p[1] = y; p[2] = z;
        return std::max(0.0, q.eval(x, y, z));
      }
    }
    const double cands[3][3] = {{a[0], a[1], a[2]},
                                {b[0], b[1], b[2]},
                                {0.5 * (a[0] + b[0]), 0.5 * (a[1] + b[1]), 0.5 * (a[2] + b[2])}};
    double best = std::numeric_limits<double>::infinity();
    for (const auto& c : cands) {
      const double e = q.eval(c[0], c[1], c[2]);
      if (e < best) {
        best = e;
        p[0] = c[0]; p[1] = c[1]; p[2] = c[2];
      }
    }
    return std::max(0.0, best);
  }

  void push(std::uint32_t u, std::uint32_t v) {
    double p[3];
    std::uint32_t keep;
    const double c = plan(u, v, p, keep);
    if (!(c <= limit_)) return;
    const double* a = &pos_[3 * u];
    const double* b = &pos_[3 * v];
    const double l2 = (a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]);
    queue_.push(c + tie_ * l2, Entry{u, v, version_[u], version_[v]});
  }

  // Alive faces around v, pruning dead corners from its list.
  template <typename Fn>
  void for_faces(std::uint32_t v, Fn&& fn) {
    std::uint32_t* link = &head_[v];
    while (*link != kNone) {
      const std::uint32_t c = *link;
      if (dead_f_[c / 3]) {
        *link = next_[c];
        continue;
      }
      fn(c / 3);
      link = &next_[c];
    }
  }

  void try_collapse(std::uint32_t u, std::uint32_t v) {
    double p[3];
    std::uint32_t keep;
    if (!(plan(u, v, p, keep) <= limit_)) return;
    // Faces shared by u and v, and the link condition.
    ++stamp_;
    if (stamp_ == 0) {
      std::fill(mark_.begin(), mark_.end(), 0);
      stamp_ = 1;
    }
    const std::uint32_t s1 = stamp_;
    int shared = 0;
    std::uint32_t opp[2] = {kNone, kNone};
    std::uint32_t shared_f[2] = {kNone, kNone};
    for_faces(u, [&](std::uint32_t f) {
      for (int k = 0; k < 3; ++k) mark_[F_[3 * f + k]] = s1;
    });
    ++stamp_;
    const std::uint32_t s2 = stamp_;
    int common = 0;
    for_faces(v, [&](std::uint32_t f) {
      bool has_u = false;
      for (int k = 0; k < 3; ++k) has_u |= F_[3 * f + k] == u;
      if (has_u) {
        if (shared < 2) {
          shared_f[shared] = f;
          for (int k = 0; k < 3; ++k) {
            const std::uint32_t w = F_[3 * f + k];
            if (w != u && w != v) opp[shared] = w;
          }
        }
        ++shared;
      }
      for (int k = 0; k < 3; ++k) {
        const std::uint32_t w = F_[3 * f + k];
        if (w == u || w == v) continue;
        if (mark_[w] == s1) {
          ++common;
          mark_[w] = s2;
        }
      }
    });
    if (shared != 2 || common != 2 || opp[0] == opp[1]) return;
    // Neighbours of valence 3 would become degenerate.
    for (int i = 0; i < 2; ++i) {
      int val = 0;
      for_faces(opp[i], [&](std::uint32_t) { ++val; });
      if (val <= 3) return;
    }
    // Orientation and degeneracy of the faces that move, for the best position and, failing
    // that, for the endpoints (within the error bound and the box constraints).
    auto fits = [&](const double* q) {
      bool ok = true;
      auto check = [&](std::uint32_t w) {
        for_faces(w, [&](std::uint32_t f) {
          if (!ok || f == shared_f[0] || f == shared_f[1]) return;
          const std::uint32_t a = F_[3 * f], b = F_[3 * f + 1], c = F_[3 * f + 2];
          double n0[3], n1[3];
          normal(a, b, c, nullptr, 0, n0);
          normal(a, b, c, q, w, n1);
          const double l1 = n1[0] * n1[0] + n1[1] * n1[1] + n1[2] * n1[2];
          if (l1 <= area_eps_ * area_eps_) {
            ok = false;
            return;
          }
          const double d = n0[0] * n1[0] + n0[1] * n1[1] + n0[2] * n1[2];
          const double l0 = n0[0] * n0[0] + n0[1] * n0[1] + n0[2] * n0[2];
          const double m = opt_.min_normal_dot;  // d < m * |n0| |n1|, without square roots
          if (m >= 0 ? (d < 0 || d * d < m * m * l0 * l1) : (d < 0 && d * d > m * m * l0 * l1))
            ok = false;
        });
      };
      check(u);
      if (ok) check(v);
      return ok;
    };
    if (!fits(p)) {
      bool found = false;
      for (const std::uint32_t end : {v, u}) {
        const std::uint32_t other = end == v ? u : v;
        if ((flags_[other] & ~flags_[end]) != 0) continue;  // would leave a box plane
        const double* x = &pos_[3 * end];
        if (x[0] == p[0] && x[1] == p[1] && x[2] == p[2]) continue;  // already tried
        Quadric q = Q_[u];
        q += Q_[v];
        if (!(q.eval(x[0], x[1], x[2]) <= limit_) || !fits(x)) continue;
        p[0] = x[0]; p[1] = x[1]; p[2] = x[2];
        keep = end;
        found = true;
        break;
      }
      if (!found) return;
    }
    // Apply: kill the two shared faces, move keep to p, hand gone's faces to keep.
    const std::uint32_t gone = keep == v ? u : v;
    dead_f_[shared_f[0]] = dead_f_[shared_f[1]] = 1;
    std::uint32_t c = head_[gone], tail = kNone;
    while (c != kNone) {
      if (!dead_f_[c / 3]) F_[c] = keep;
      tail = c;
      c = next_[c];
    }
    if (tail != kNone) {
      next_[tail] = head_[keep];
      head_[keep] = head_[gone];
    }
    head_[gone] = kNone;
    dead_v_[gone] = 1;
    Q_[keep] += Q_[gone];
    flags_[keep] |= flags_[gone];
    pos_[3 * keep] = p[0];
    pos_[3 * keep + 1] = p[1];
    pos_[3 * keep + 2] = p[2];
    ++version_[keep];
    // New candidate edges around keep.
    ++stamp_;
    const std::uint32_t s3 = stamp_;
    mark_[keep] = s3;
    for_faces(keep, [&](std::uint32_t f) {
      for (int k = 0; k < 3; ++k) {
        const std::uint32_t w = F_[3 * f + k];
        if (mark_[w] == s3) continue;
        mark_[w] = s3;
        push(keep, w);
      }
    });
  }

  void compact() {
    std::vector<std::uint32_t> remap(nv_, kNone);
    Buf<float> verts;
    Buf<std::uint32_t> faces;
    faces.reserve(F_.size());
    std::uint32_t n = 0;
    for (std::size_t f = 0; f < nf_; ++f) {
      if (dead_f_[f]) continue;
      for (int k = 0; k < 3; ++k) {
        const std::uint32_t w = F_[3 * f + k];
        if (remap[w] == kNone) {
          remap[w] = n++;
          verts.push_back(static_cast<float>(pos_[3 * w]));
          verts.push_back(static_cast<float>(pos_[3 * w + 1]));
          verts.push_back(static_cast<float>(pos_[3 * w + 2]));
        }
        faces.push_back(remap[w]);
      }
    }
    m_.vertices = std::move(verts);
    m_.faces = std::move(faces);
  }

  Mesh& m_;
  const SimplifyOptions& opt_;
  std::size_t nv_, nf_;
  std::vector<double> pos_;
  std::vector<std::uint32_t> F_;
  std::vector<Quadric> Q_;
  std::vector<std::uint32_t> version_, head_, next_, mark_;
  std::vector<std::uint8_t> dead_v_, dead_f_, flags_;
  BucketQueue queue_;
  std::uint32_t stamp_ = 0;
  double area_eps_ = 0, limit_ = 0, tie_ = 0;
};

}  // namespace

void simplify(Mesh& mesh, const SimplifyOptions& opt) {
  if (opt.max_error <= 0 || mesh.faces.empty()) return;
  Simplifier s(mesh, opt);
  s.run();
}

namespace {

// smooth() for meshes where some vertex has more than 8 same-axis neighbours (not a closed
// marching-cubes mesh): a compressed neighbour list.
void smooth_general(Mesh& m, const Frame& frame, int iterations, double limit) {
  const std::size_t nv = m.vertices.size() / 3;
  if (iterations <= 0 || nv == 0 || m.axis.size() != nv) return;
  // Each movable vertex v keeps one coordinate q[v] (along its lattice edge).  In a closed
  // manifold the half-edges a -> b of the faces visit every neighbour b of a exactly once, so the
  // neighbours' mean along a's axis is (constant part + sum of q over neighbours on the same axis)
  // / valence: neighbours on other axes (or on the box) never move along a's axis.
  const std::uint8_t* axis = m.axis.data();
  float* p = m.vertices.data();
  std::vector<std::uint32_t> id(nv, kNone);
  std::uint32_t nm = 0;
  for (std::size_t v = 0; v < nv; ++v)
    if (axis[v] < 3) id[v] = nm++;
  if (nm == 0) return;
  std::vector<float> q(nm), lo(nm), hi(nm), fixed(nm, 0.0f), inv(nm);
  std::vector<std::uint32_t> start(nm + 1, 0), valence(nm, 0);
  for (std::size_t v = 0; v < nv; ++v) {
    if (id[v] == kNone) continue;
    const std::uint32_t i = id[v];
    const int ax = axis[v];
    q[i] = p[3 * v + ax];
    const float d = static_cast<float>(limit * frame.scale[ax]);
    lo[i] = q[i] - d;
    hi[i] = q[i] + d;
  }
  const std::uint32_t* f = m.faces.data();
  const std::size_t nidx = m.faces.size() - m.faces.size() % 3;
  // Pass 1: valences, constant parts and the number of same-axis neighbours.
  for (std::size_t i = 0; i < nidx; i += 3)
    for (int k = 0; k < 3; ++k) {
      const std::uint32_t a = f[i + k], b = f[i + (k + 1) % 3];
      const std::uint32_t ia = id[a];
      if (ia == kNone) continue;
      ++valence[ia];
      if (axis[b] == axis[a])
        ++start[ia + 1];
      else
        fixed[ia] += p[3 * b + axis[a]];
    }
  for (std::uint32_t i = 0; i < nm; ++i) {
    start[i + 1] += start[i];
    inv[i] = valence[i] ? 1.0f / static_cast<float>(valence[i]) : 0.0f;
  }
  std::vector<std::uint32_t> link(start[nm]);
  {
    std::vector<std::uint32_t> fill(start.begin(), start.end() - 1);
    for (std::size_t i = 0; i < nidx; i += 3)
      for (int k = 0; k < 3; ++k) {
        const std::uint32_t a = f[i + k], b = f[i + (k + 1) % 3];
        const std::uint32_t ia = id[a];
        if (ia != kNone && axis[b] == axis[a]) link[fill[ia]++] = id[b];
      }
  }
  std::vector<float> next(nm);
  for (int it = 0; it < iterations; ++it) {
    for (std::uint32_t i = 0; i < nm; ++i) {
      if (valence[i] == 0) {
        next[i] = q[i];
        continue;
      }
      float s = fixed[i];
      for (std::uint32_t j = start[i]; j < start[i + 1]; ++j) s += q[link[j]];
      next[i] = std::min(hi[i], std::max(lo[i], s * inv[i]));
    }
    q.swap(next);
  }
  for (std::size_t v = 0; v < nv; ++v)
    if (id[v] != kNone) p[3 * v + axis[v]] = q[id[v]];
}

}  // namespace

void smooth(Mesh& m, const Frame& frame, int iterations, double limit) {
  const std::size_t nv = m.vertices.size() / 3;
  if (iterations <= 0 || nv == 0 || m.axis.size() != nv) return;
  // Each vertex v not on the box keeps one coordinate q[v] (along its lattice edge).  In a closed
  // manifold the half-edges a -> b of the faces visit every neighbour b of a exactly once, so the
  // neighbours' mean along a's axis is (constant part + sum of q over neighbours on the same axis)
  // / valence: neighbours on other axes (or on the box) never move along a's axis.  A vertex of
  // one label's mesh has at most 8 same-axis neighbours (on the 8 parallel lattice edges around
  // its own, one vertex per edge), so they fit a fixed stride of 8, filled in one pass over the
  // faces.  Box vertices (and isolated ones) are pinned by lo = hi.
  const std::uint8_t* axis = m.axis.data();
  float* p = m.vertices.data();
  struct Scratch {
    Buf<float> q, next, lo, hi, fixed, inv;
    Buf<std::uint32_t> nbr;
    Buf<std::uint8_t> cnt;
    Buf<std::uint16_t> valence;
  };
  thread_local Scratch sc;  // reused across the labels a thread smooths
  sc.q.resize(nv), sc.next.resize(nv), sc.lo.resize(nv), sc.hi.resize(nv);
  sc.fixed.resize(nv), sc.inv.resize(nv), sc.nbr.resize(8 * nv), sc.cnt.resize(nv);
  sc.valence.resize(nv);
  float *q = sc.q.data(), *lo = sc.lo.data(), *hi = sc.hi.data(), *fixed = sc.fixed.data(),
        *inv = sc.inv.data();
  std::uint32_t* nbr = sc.nbr.data();
  std::uint8_t* cnt = sc.cnt.data();
  std::uint16_t* valence = sc.valence.data();
  const float d[3] = {static_cast<float>(limit * frame.scale[0]),
                      static_cast<float>(limit * frame.scale[1]),
                      static_cast<float>(limit * frame.scale[2])};
  for (std::size_t v = 0; v < nv; ++v) {
    const int ax = axis[v];
    q[v] = ax < 3 ? p[3 * v + ax] : 0.0f;
    lo[v] = ax < 3 ? q[v] - d[ax] : 0.0f;
    hi[v] = ax < 3 ? q[v] + d[ax] : 0.0f;
  }
  std::memset(fixed, 0, nv * sizeof(float));
  std::memset(cnt, 0, nv);
  std::memset(valence, 0, nv * sizeof(std::uint16_t));
  const std::uint32_t* f = m.faces.data();
  const std::size_t nidx = m.faces.size() - m.faces.size() % 3;
  bool overflow = false;
  for (std::size_t i = 0; i < nidx; i += 3) {
    const std::uint32_t t[4] = {f[i], f[i + 1], f[i + 2], f[i]};
    for (int k = 0; k < 3; ++k) {
      const std::uint32_t a = t[k], b = t[k + 1];
      const int ax = axis[a];
      if (ax == 3) continue;
      ++valence[a];
      if (axis[b] == ax) {
        if (cnt[a] == 8) {
          overflow = true;
          continue;
        }
        nbr[8 * static_cast<std::size_t>(a) + cnt[a]++] = b;
      } else {
        fixed[a] += p[3 * b + ax];
      }
    }
  }
  if (overflow) {
    smooth_general(m, frame, iterations, limit);
    return;
  }
  for (std::size_t v = 0; v < nv; ++v) {
    inv[v] = valence[v] ? 1.0f / static_cast<float>(valence[v]) : 0.0f;
    if (!valence[v]) lo[v] = hi[v] = q[v];  // isolated: stays put
  }
  float* next = sc.next.data();
  for (int it = 0; it < iterations; ++it) {
    for (std::size_t v = 0; v < nv; ++v) {
      float s = fixed[v];
      const std::uint32_t* nb = nbr + 8 * v;
      for (int j = 0, n = cnt[v]; j < n; ++j) s += q[nb[j]];
      next[v] = std::min(hi[v], std::max(lo[v], s * inv[v]));
    }
    std::swap(q, next);
  }
  for (std::size_t v = 0; v < nv; ++v)
    if (axis[v] < 3) p[3 * v + axis[v]] = q[v];
}

Buf<float> vertex_normals(const Mesh& m) {
  Buf<float> n;
  n.resize(m.vertices.size());
  std::fill(n.begin(), n.end(), 0.0f);
  const float* p = m.vertices.data();
  for (std::size_t f = 0; f + 2 < m.faces.size(); f += 3) {
    const std::uint32_t a = m.faces[f], b = m.faces[f + 1], c = m.faces[f + 2];
    const float e1[3] = {p[3 * b] - p[3 * a], p[3 * b + 1] - p[3 * a + 1], p[3 * b + 2] - p[3 * a + 2]};
    const float e2[3] = {p[3 * c] - p[3 * a], p[3 * c + 1] - p[3 * a + 1], p[3 * c + 2] - p[3 * a + 2]};
    const float fn[3] = {e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2],
                         e1[0] * e2[1] - e1[1] * e2[0]};
    for (std::uint32_t v : {a, b, c})
      for (int k = 0; k < 3; ++k) n[3 * v + k] += fn[k];
  }
  for (std::size_t v = 0; v + 2 < n.size(); v += 3) {
    const float l = std::sqrt(n[v] * n[v] + n[v + 1] * n[v + 1] + n[v + 2] * n[v + 2]);
    if (l > 0)
      for (int k = 0; k < 3; ++k) n[v + k] /= l;
  }
  return n;
}

// ---- bounding boxes ------------------------------------------------------------------------

void BoxAccumulator::grow() {
  std::vector<std::uint64_t> keys = std::move(keys_);
  std::vector<Box> boxes = std::move(boxes_);
  std::vector<std::uint8_t> used = std::move(used_);
  const std::size_t cap = keys.empty() ? 1024 : keys.size() * 2;
  keys_.assign(cap, 0);
  boxes_.assign(cap, Box{});
  used_.assign(cap, 0);
  count_ = 0;
  for (std::size_t i = 0; i < keys.size(); ++i)
    if (used[i]) slot(keys[i]) = boxes[i];
}

BoxAccumulator::Box& BoxAccumulator::slot(std::uint64_t label) {
  if ((count_ + 1) * 2 > keys_.size()) grow();
  const std::size_t mask = keys_.size() - 1;
  std::size_t i = static_cast<std::size_t>((label * 0x9E3779B97F4A7C15ull) >> 20) & mask;
  while (used_[i] && keys_[i] != label) i = (i + 1) & mask;
  if (!used_[i]) {
    used_[i] = 1;
    keys_[i] = label;
    auto& b = boxes_[i];
    for (int k = 0; k < 3; ++k) {
      b.lo[k] = std::numeric_limits<std::int64_t>::max();
      b.hi[k] = std::numeric_limits<std::int64_t>::min();
    }
    ++count_;
  }
  return boxes_[i];
}

template <typename T>
void BoxAccumulator::add(const Volume3<T>& slab, std::int64_t z0) {
  const std::ptrdiff_t nz = slab.shape[0], ny = slab.shape[1], nx = slab.shape[2];
  const std::ptrdiff_t sx = slab.strides[2];
  for (std::ptrdiff_t z = 0; z < nz; ++z) {
    const std::int64_t zz = z0 + z;
    for (std::ptrdiff_t y = 0; y < ny; ++y) {
      const T* row = slab.data + z * slab.strides[0] + y * slab.strides[1];
      std::ptrdiff_t x = 0;
      while (x < nx) {
        const T lab = row[x * sx];
        std::ptrdiff_t e = x + 1;
        if (sx == 1)
          while (e < nx && row[e] == lab) ++e;
        else
          while (e < nx && row[e * sx] == lab) ++e;
        if (lab != 0) {
          Box& b = slot(static_cast<std::uint64_t>(lab));
          b.lo[0] = std::min<std::int64_t>(b.lo[0], zz);
          b.hi[0] = std::max<std::int64_t>(b.hi[0], zz + 1);
          b.lo[1] = std::min<std::int64_t>(b.lo[1], y);
          b.hi[1] = std::max<std::int64_t>(b.hi[1], y + 1);
          b.lo[2] = std::min<std::int64_t>(b.lo[2], x);
          b.hi[2] = std::max<std::int64_t>(b.hi[2], e);
        }
        x = e;
      }
    }
  }
}

void BoxAccumulator::result(std::vector<std::uint64_t>& labels, std::vector<Box>& boxes) const {
  std::vector<std::size_t> idx;
  for (std::size_t i = 0; i < keys_.size(); ++i)
    if (used_[i]) idx.push_back(i);
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return keys_[a] < keys_[b]; });
  labels.clear();
  boxes.clear();
  for (std::size_t i : idx) {
    labels.push_back(keys_[i]);
    boxes.push_back(boxes_[i]);
  }
}

template void BoxAccumulator::add(const Volume3<std::uint8_t>&, std::int64_t);
template void BoxAccumulator::add(const Volume3<std::uint16_t>&, std::int64_t);
template void BoxAccumulator::add(const Volume3<std::uint32_t>&, std::int64_t);
template void BoxAccumulator::add(const Volume3<std::uint64_t>&, std::int64_t);

}  // namespace ngshow::mesher
