import { Injectable } from '@nestjs/common';
import Stripe from 'stripe';

@Injectable()
export class PayoutService {
  constructor(private readonly stripe: Stripe) {}

  async payOut(accountId: string, cents: number, batchId: string) {
    const transfer = await this.stripe.transfers.create({ amount: cents, currency: 'usd', destination: accountId }); // expect: idem/stripe-requires-idempotency-key
    const payout = await this.stripe.payouts.create(
      { amount: cents, currency: 'usd' },
      { stripeAccount: accountId, idempotencyKey: `payout-${batchId}-${accountId}` },
    );
    return { transfer, payout };
  }

  async charge(customer: string, cents: number, orderId: string) {
    return this.stripe.charges.create({ amount: cents, currency: 'usd', customer }, { idempotencyKey: `order-${orderId}` });
  }

  async confirm(intentId: string) {
    return this.stripe.paymentIntents.confirm(intentId); // expect: idem/stripe-requires-idempotency-key
  }

  async payInvoice(invoiceId: string) {
    return this.stripe.invoices.pay(invoiceId, {}, { idempotencyKey: `invoice-${invoiceId}` });
  }

  async topUp(cents: number) {
    return this.stripe.topups.create({ amount: cents, currency: 'usd' }); // expect: idem/stripe-requires-idempotency-key
  }

  async listCharges(customer: string) {
    return this.stripe.charges.list({ customer, limit: 100 });
  }

  async updateCustomer(customer: string, email: string) {
    return this.stripe.customers.update(customer, { email });
  }
}
