#include "tapegrad/dist/data_parallel.hpp"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <stdexcept>
#include <string>

#include "tapegrad/data/loader.hpp"
#include "tapegrad/random.hpp"

#include <xtensor/xbuilder.hpp>

namespace tg::dist {

namespace {

// FNV-1a, 64 bits: a fingerprint of a model's layout that every rank can compare.
std::uint64_t fnv1a(const std::string& s, std::uint64_t h = 1469598103934665603ULL) {
    for (const unsigned char ch : s) {
        h ^= ch;
        h *= 1099511628211ULL;
    }
    return h;
}

// "name [shape] grad" for every parameter, "name [shape]" for every buffer.
std::string describe(const nn::Module& model) {
    std::string d;
    for (const auto& [name, t] : model.named_parameters())
        d += "P " + name + " " + shape_str(t.shape()) + (t.requires_grad() ? " grad\n" : "\n");
    for (const auto& [name, t] : model.named_buffers())
        d += "B " + name + " " + shape_str(t.shape()) + "\n";
    return d;
}

std::size_t total_values(const nn::Module& model) {
    std::size_t n = 0;
    for (const Tensor& t : model.parameters())
        n += t.numel();
    for (const Tensor& t : model.buffers())
        n += t.numel();
    return n;
}

}  // namespace

DataParallel::DataParallel(const Context& ctx, nn::Module& model, DataParallelOptions options)
    : ctx_(&ctx) {
    // 1. The same model everywhere? Compare (tensor count, value count, layout fingerprint).
    const std::size_t tensors = model.parameters().size() + model.buffers().size();
    const std::size_t values = total_values(model);
    const std::uint64_t print = fnv1a(describe(model));
    const auto all_tensors = ctx.all_gather(static_cast<std::uint64_t>(tensors));
    const auto all_values = ctx.all_gather(static_cast<std::uint64_t>(values));
    const auto all_prints = ctx.all_gather(print);
    for (int r = 1; r < ctx.world_size(); ++r) {
        const auto i = static_cast<std::size_t>(r);
        if (all_prints[i] == all_prints[0]) continue;
        throw std::invalid_argument(
            "tg::dist::DataParallel: the models differ across ranks: rank " + std::to_string(r) +
            " has " + std::to_string(all_tensors[i]) + " parameters and buffers (" +
            std::to_string(all_values[i]) + " values), rank 0 has " +
            std::to_string(all_tensors[0]) + " (" + std::to_string(all_values[0]) +
            " values), or their names, shapes or requires_grad differ; build the same model on "
            "every rank");
    }

    // 2. Rank 0's parameters and buffers on every rank: packed into one buffer, one MPI_Bcast.
    std::vector<Tensor> state = model.parameters();
    for (const Tensor& b : model.buffers())
        state.push_back(b);
    std::vector<real> packed(values);
    std::size_t at = 0;
    for (const Tensor& t : state) {
        std::copy_n(t.value().data(), t.numel(), packed.data() + at);
        at += t.numel();
    }
    ctx.broadcast(packed.data(), packed.size(), 0);
    at = 0;
    for (Tensor t : state) {
        std::copy_n(packed.data() + at, t.numel(), t.value().data());
        at += t.numel();
    }

    // 3. Buckets over the trainable parameters, last registered first (the order in which the
    // backward finishes them, as PyTorch's DDP), each at most bucket_bytes unless one tensor
    // alone is larger.
    for (const Tensor& p : model.parameters())
        if (p.requires_grad()) params_.push_back(p);
    std::reverse(params_.begin(), params_.end());
    const std::size_t per_bucket = std::max<std::size_t>(1, options.bucket_bytes / sizeof(real));
    std::size_t in_bucket = 0, largest = 0;
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const std::size_t n = params_[i].numel();
        if (buckets_.empty() || in_bucket + n > per_bucket) {
            if (!buckets_.empty()) largest = std::max(largest, in_bucket);
            buckets_.emplace_back();
            in_bucket = 0;
        }
        buckets_.back().push_back(i);
        in_bucket += n;
    }
    largest = std::max(largest, in_bucket);
    buffer_.resize(largest);
}

void DataParallel::all_reduce_gradients() {
    const auto start = std::chrono::steady_clock::now();
    const real inv_P = real(1) / static_cast<real>(ctx_->world_size());
    // Every rank checks its gradients' shapes (packing a gradient of another shape would read
    // past its end) and which parameters are frozen now (requires_grad turned off since the
    // buckets were made: they are skipped, neither reduced nor given a zero gradient, so
    // weight decay cannot move them); then all agree, so a refusal is every rank's.
    std::string error;
    std::uint64_t frozen_hash = 1469598103934665603ull;  // FNV-1a over the frozen indices
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const Tensor& p = params_[i];
        if (!p.requires_grad()) {
            for (std::size_t v = i + 1; v != 0; v >>= 8)
                frozen_hash = (frozen_hash ^ (v & 0xff)) * 1099511628211ull;
            continue;
        }
        if (error.empty() && p.has_grad() &&
            !std::equal(p.grad().shape().begin(), p.grad().shape().end(), p.value().shape().begin(),
                        p.value().shape().end())) {
            error = "the gradient of parameter " + std::to_string(params_.size() - 1 - i) +
                    (p.name().empty() ? std::string() : " '" + p.name() + "'") + " has shape " +
                    shape_str(p.grad().shape()) + ", its parameter " + shape_str(p.shape());
        }
    }
    ctx_->agree("DataParallel::all_reduce_gradients", error, frozen_hash,
                "frozen parameters (hash)");
    for (const auto& bucket : buckets_) {
        // Pack: the bucket's gradients back to back (zeros where backward did not reach).
        std::size_t at = 0;
        for (const std::size_t i : bucket) {
            const Tensor& p = params_[i];
            if (!p.requires_grad()) continue;  // frozen since: not reduced
            if (p.has_grad())
                std::copy_n(p.grad().data(), p.numel(), buffer_.data() + at);
            else
                std::fill_n(buffer_.data() + at, p.numel(), real(0));
            at += p.numel();
        }
        ctx_->all_reduce_sum(buffer_.data(), at);  // Σ_ranks g
        ++calls_;
        // Unpack: g = 1/P Σ_ranks g.
        at = 0;
        for (const std::size_t i : bucket) {
            Tensor& p = params_[i];
            if (!p.requires_grad()) continue;
            if (!p.has_grad()) p.accumulate_grad(Tensor::zeros(p.shape()).value());
            real* g = p.grad().data();
            for (std::size_t k = 0; k < p.numel(); ++k)
                g[k] = buffer_[at + k] * inv_P;
            at += p.numel();
        }
    }
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::vector<std::size_t> DataParallel::bucket_sizes() const {
    std::vector<std::size_t> sizes;
    for (const auto& bucket : buckets_) {
        std::size_t n = 0;
        for (const std::size_t i : bucket)
            n += params_[i].numel();
        sizes.push_back(n);
    }
    return sizes;
}

// ---- DistributedSampler --------------------------------------------------------------------

DistributedSampler::DistributedSampler(std::size_t size, const Context& ctx,
                                       DistributedSamplerOptions options)
    : DistributedSampler(size, ctx.rank(), ctx.world_size(), options) {}

DistributedSampler::DistributedSampler(std::size_t size, int rank, int world_size,
                                       DistributedSamplerOptions options)
    : size_(size), rank_(rank), world_size_(world_size), options_(options) {
    if (world_size < 1 || rank < 0 || rank >= world_size) {
        throw std::invalid_argument("tg::dist::DistributedSampler: rank " + std::to_string(rank) +
                                    " of " + std::to_string(world_size) +
                                    ", expected 0 <= rank < world_size");
    }
    if (num_samples() == 0) {
        throw std::invalid_argument("tg::dist::DistributedSampler: " + std::to_string(size) +
                                    " examples cannot give each of " + std::to_string(world_size) +
                                    " ranks one" + (options.drop_last ? " (drop_last)" : ""));
    }
}

std::size_t DistributedSampler::num_samples() const {
    const auto P = static_cast<std::size_t>(world_size_);
    return options_.drop_last ? size_ / P : (size_ + P - 1) / P;
}

std::vector<std::size_t> DistributedSampler::indices(std::size_t k) const {
    // The permutation every rank draws alike: DataLoader::order's Fisher–Yates.
    std::vector<std::size_t> order(size_);
    std::iota(order.begin(), order.end(), std::size_t{0});
    if (options_.shuffle) {
        Generator gen(data::epoch_seed(options_.seed, k));
        for (std::size_t i = order.size(); i > 1; --i) {
            const std::size_t j = gen.randint(i);
            std::swap(order[i - 1], order[j]);
        }
    }
    // Padded (repeating the start) or cut to total = num_samples · P, then every P-th from r.
    const auto P = static_cast<std::size_t>(world_size_);
    const std::size_t per_rank = num_samples(), total = per_rank * P;
    std::vector<std::size_t> mine;
    mine.reserve(per_rank);
    for (std::size_t pos = static_cast<std::size_t>(rank_); pos < total; pos += P)
        mine.push_back(order[pos % size_]);
    return mine;
}

}  // namespace tg::dist
