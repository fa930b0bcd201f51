/** enorm/webgpu: the cycle kernels as WGSL on a caller's GPUDevice (ENorm.onDevice runs them). */
export { WebGPUBackend } from './engine/webgpu/backend.js';
