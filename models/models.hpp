// The whole public models API: include this one header.
#pragma once

#include "models/vae.hpp"
#include "models/conditional_vae.hpp"
#include "models/vae_file.hpp"  // a VAE from a checkpoint, validated
