/** The image-only UNet baseline: config and model. */
export { type UNetConfig, UNET_DEFAULTS, parseUNetConfig, unetConfigToJson } from './config.js';
export { DoubleConv, UNet, UpBlock } from './model.js';
