/** The operation the function benchmarks wrap: an async call with a small result, as a service call would have. */
export interface Order {
  id: string;
  amount: number;
  currency: string;
}

export async function createOrder(
  order: Order,
): Promise<{ id: string; amount: number; currency: string; status: string }> {
  return { id: order.id, amount: order.amount, currency: order.currency, status: 'created' };
}

export const order = (id: string): Order => ({ id, amount: 500, currency: 'eur' });
