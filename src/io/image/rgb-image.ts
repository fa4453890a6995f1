/** An 8-bit RGB image: `data` is HWC [height, width, 3], length width*height*3. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}
