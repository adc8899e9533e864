// TypeScript for a bundled browser app: the browser entry's types, init() typed.
import init, { planJson, type InitOutput, type Plan } from 'proxbox-planner';

export async function planSample(url: string): Promise<Plan> {
  const ready: InitOutput = await init();
  void ready;
  const text = await (await fetch(url)).text();
  return JSON.parse(planJson(text)) as Plan;
}
