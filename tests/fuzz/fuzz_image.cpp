// libFuzzer target: the image decoder (libpng, libjpeg-turbo and our size checks) on any bytes, as gray and
// as RGB. Bad input must end in datasets::DataError; a decoded image must be as large as it says.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "datasets/error.hpp"
#include "datasets/image_folder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (std::size_t channels : {1, 3}) {
    try {
      const datasets::Image image = datasets::decode_image(bytes, channels, "fuzz.png");
      if (image.channels != channels || image.pixels.size() != image.height * image.width * channels)
        __builtin_trap();
    } catch (const datasets::DataError&) {
    }
  }
  return 0;
}
