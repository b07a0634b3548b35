// The one element-count check (tapegrad/config.hpp): its own file, with nothing but the
// standard library and xtensor, so the page's live figure (scripts/build_live.sh) can link it.
#include <sstream>
#include <stdexcept>
#include <vector>

#include "tapegrad/config.hpp"

namespace tg {

std::size_t checked_numel(const std::size_t* sizes, std::size_t ndim, const char* where) {
    std::size_t nonzero_product = 1;
    bool has_zero = false;
    for (std::size_t i = 0; i < ndim; ++i) {
        const std::size_t d = sizes[i];
        if (d == 0) {
            has_zero = true;
        } else if (nonzero_product > max_numel / d) {
            std::ostringstream msg;
            msg << "tapegrad: a tensor of shape "
                << shape_str(std::vector<std::size_t>(sizes, sizes + ndim))
                << " is too large (the product of its non-zero sizes exceeds " << max_numel
                << " elements); in " << where;
            throw std::length_error(msg.str());
        } else {
            nonzero_product *= d;
        }
    }
    return has_zero ? 0 : nonzero_product;
}

Array new_array(const Shape& shape, const char* where) {
    checked_numel(shape, where);
    return Array::from_shape(shape);
}

}  // namespace tg
