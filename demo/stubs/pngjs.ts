/**
 * Browser stand-in for `pngjs`, which src/io/image.ts imports at the top level: the real package needs Node's
 * `util`, `stream` and `zlib` and throws while loading in a browser. The demo decodes images with the browser
 * (createImageBitmap + canvas, then fromPixels), so PNG decoding through the library is never reached here.
 */
function unavailable(): never {
  throw new Error("pngjs is not available in the browser build: decode images with createImageBitmap and use fromPixels");
}

export const PNG = {
  sync: { read: unavailable, write: unavailable },
};

export default { PNG };
