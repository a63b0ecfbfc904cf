/** An 8-bit RGB image, row-major, channels interleaved (HWC), as decoders hand it on. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
  /** All three channels are equal (a greyscale source): lets resizing work on one plane. */
  grey?: boolean;
}
