// The whole public datasets API: include this one header.
#pragma once

#include "datasets/dataset.hpp"
#include "datasets/error.hpp"
#include "datasets/idx.hpp"
#include "datasets/loader.hpp"
#include "datasets/synthetic.hpp"
#include "datasets/csv.hpp"
#include "datasets/image_folder.hpp"
#include "datasets/npy.hpp"
#include "datasets/source.hpp"  // any of the above, chosen by the path
