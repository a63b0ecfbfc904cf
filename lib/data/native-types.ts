// The data layer's part of the native addon (csrc/io/image_preprocess.cpp).

/** What to do to an 8-bit image, in order: pad to square, resize, centre crop, rescale + normalize. */
export interface NativeImagePlan {
  padFill?: [number, number, number] | null;
  /** [width, height] */
  resize?: [number, number] | null;
  filter?: string;
  /** [height, width] */
  crop?: [number, number] | null;
  rescale?: number | null;
  mean?: [number, number, number] | null;
  std?: [number, number, number] | null;
}

export interface NativeImageResult<T> {
  width: number;
  height: number;
  data: T;
}

export interface DataAddon {
  imagePreprocess(pixels: Uint8Array, width: number, height: number, channels: 1 | 3, plan: NativeImagePlan, toFloat: true): NativeImageResult<Float32Array>;
  imagePreprocess(pixels: Uint8Array, width: number, height: number, channels: 1 | 3, plan: NativeImagePlan, toFloat: false): NativeImageResult<Uint8Array>;
  imagePreprocessAsync(pixels: Uint8Array, width: number, height: number, channels: 1 | 3, plan: NativeImagePlan, toFloat: true): Promise<NativeImageResult<Float32Array>>;
}
