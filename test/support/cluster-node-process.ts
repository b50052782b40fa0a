import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * A ringstore cluster node in a child process (test/fixtures/cluster-node.ts, run from dist/), driven
 * over IPC: what the cluster tests kill with SIGKILL and pause with SIGSTOP.
 */
export interface NodeEvent {
  aggregateType: string;
  aggregateId: string;
  version: number;
  position: number;
  generation: number;
  timestamp: number;
  type: string;
  data: string;
}

export class NodeError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

const FIXTURE = fileURLToPath(new URL('../../dist/test/fixtures/cluster-node.js', import.meta.url));

export interface NodeSpec {
  dir: string;
  nodeId: string;
  servers: string[];
  namespace: string;
  leaseTtlMs: number;
  putTimeoutMs: number;
}

export class ClusterNodeProcess {
  readonly nodeId: string;
  readonly child: ChildProcess;
  #next = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  #exited = false;

  private constructor(nodeId: string, child: ChildProcess) {
    this.nodeId = nodeId;
    this.child = child;
    child.on(
      'message',
      (m: { id?: number; ok?: boolean; value?: unknown; error?: { code: string; message: string } }) => {
        if (m.id === undefined) return;
        const p = this.#pending.get(m.id);
        if (!p) return;
        this.#pending.delete(m.id);
        if (m.ok) p.resolve(m.value);
        else p.reject(new NodeError(m.error!.code, m.error!.message));
      },
    );
    child.on('exit', () => {
      this.#exited = true;
      for (const p of this.#pending.values()) p.reject(new NodeError('NODE_GONE', `node ${nodeId} exited`));
      this.#pending.clear();
    });
  }

  static start(spec: NodeSpec): Promise<ClusterNodeProcess> {
    const child = fork(
      FIXTURE,
      [
        spec.dir,
        spec.nodeId,
        spec.servers.join(','),
        spec.namespace,
        String(spec.leaseTtlMs),
        String(spec.putTimeoutMs),
      ],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
    );
    const node = new ClusterNodeProcess(spec.nodeId, child);
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) =>
        reject(new Error(`node ${spec.nodeId} exited at start (${code})`));
      child.once('exit', onExit);
      child.on('message', (m: { ready?: boolean }) => {
        if (m.ready) {
          child.off('exit', onExit);
          resolve(node);
        }
      });
    });
  }

  get alive(): boolean {
    return !this.#exited;
  }

  request<T>(op: string, fields: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    if (this.#exited) return Promise.reject(new NodeError('NODE_GONE', `node ${this.nodeId} exited`));
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new NodeError('TEST_TIMEOUT', `node ${this.nodeId}: ${op} unanswered in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ id, op, ...fields });
    });
  }

  dump(domain: string): Promise<NodeEvent[]> {
    return this.request<NodeEvent[]>('dump', { domain });
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill(signal);
    await exited;
  }

  async close(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.request('close').catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
