/**
 * enorm/webgpu: ENorm cycles as WGSL on a caller's GPUDevice. `DeviceStep` records one checked
 * cycle into a command encoder; `WebGPUBackend` is its kernel set (for `ENorm.onDevice`).
 */
export { DeviceStep, type DeviceSlot, type DeviceStatus, type DeviceStepOptions, type PendingStep } from './engine/webgpu/step.js';
export { WebGPUBackend } from './engine/webgpu/backend.js';
