#pragma once

#include <functional>
#include <map>
#include <string>

namespace hosting::controlplane {

// Pulls an image on every node that will run it, without blocking; `done` gets node -> error
// ("" for pulled) once every node has answered. hostd wires it to ClusterManager::PullOnNodes;
// tests may pass their own.
using ImagePuller = std::function<void(
    const std::string& image, std::function<void(std::map<std::string, std::string>)> done)>;

}  // namespace hosting::controlplane
