// The layer catalog (tapegrad/nn/catalog.hpp): the list of every layer file's examples (each
// file's stand at its end, beside its layers).
#include "tapegrad/nn/catalog.hpp"

#include <utility>

namespace tg::nn {

const std::vector<LayerExample>& layer_catalog() {
    static const std::vector<LayerExample> all = [] {
        std::vector<LayerExample> out;
        for (std::vector<LayerExample> (*file)() :
             {catalog::activation_layers, catalog::conv_layers, catalog::dropout_layers,
              catalog::linear_layers, catalog::normalization_layers, catalog::pool_layers})
            for (LayerExample& e : file())
                out.push_back(std::move(e));
        return out;
    }();
    return all;
}

}  // namespace tg::nn
