// An LlmClient that answers generateStructured from a script, one output per call, validated as a real one would be.
import type { LlmClient, LlmUsage, StructuredRequest, StructuredResult } from '../../shared/llm_client.js';

export interface ScriptedLlm extends LlmClient {
  /** The prompt of each generateStructured call, in order. */
  readonly prompts: string[];
}

/** Shifts `outputs` on each call (throws when exhausted); generateText and embed are not scripted. */
export function scriptedLlm(outputs: unknown[], modelName: string, usage: LlmUsage): ScriptedLlm {
  const prompts: string[] = [];
  return {
    modelName,
    prompts,
    async generateStructured<T>(request: StructuredRequest<T>): Promise<StructuredResult<T>> {
      prompts.push(request.prompt);
      const next = outputs.shift();
      if (next === undefined) throw new Error('script exhausted');
      return { value: request.validate(next), rawText: JSON.stringify(next), usage };
    },
    async generateText() {
      throw new Error('not scripted');
    },
    async embed() {
      throw new Error('not scripted');
    },
    async close() {},
  };
}
