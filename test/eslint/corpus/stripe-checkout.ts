import express from 'express';
import Stripe from 'stripe';

const stripe = new Stripe(process.env.STRIPE_SECRET_KEY ?? '');
const app = express();

app.post('/payments', express.json(), async (req, res) => {
  const idempotencyKey = req.get('Idempotency-Key');
  if (!idempotencyKey) return res.status(400).json({ error: 'Idempotency-Key required' });
  const intent = await stripe.paymentIntents.create(
    { amount: req.body.amount, currency: 'usd', customer: req.body.customer },
    { idempotencyKey },
  );
  res.json({ clientSecret: intent.client_secret });
});

app.post('/orders/:id/refund', async (req, res) => {
  const refund = await stripe.refunds.create({ payment_intent: req.body.paymentIntent }); // expect: idem/stripe-requires-idempotency-key
  res.json(refund);
});

app.post('/checkout', async (req, res) => {
  const customer = await stripe.customers.create({ email: req.body.email });
  const session = await stripe.checkout.sessions.create({ // expect: idem/stripe-requires-idempotency-key
    mode: 'payment',
    customer: customer.id,
    line_items: [{ price: req.body.price, quantity: 1 }],
    success_url: 'https://shop.example/ok',
    cancel_url: 'https://shop.example/cancel',
  });
  res.redirect(303, session.url ?? '/');
});

app.post('/subscriptions', async (req, res) => {
  const subscription = await stripe.subscriptions.create( // expect: idem/stripe-requires-idempotency-key
    { customer: req.body.customer, items: [{ price: req.body.price }] },
    { stripeAccount: req.body.account },
  );
  res.json(subscription);
});

app.post('/capture/:id', async (req, res) => {
  const options: Stripe.RequestOptions = { idempotencyKey: `capture-${req.params.id}` };
  const intent = await stripe.paymentIntents.capture(req.params.id, {}, options);
  res.json(intent);
});

app.get('/payments/:id', async (req, res) => {
  res.json(await stripe.paymentIntents.retrieve(req.params.id));
});

app.post('/webhook', express.raw({ type: 'application/json' }), (req, res) => {
  const event = stripe.webhooks.constructEvent(req.body, req.get('stripe-signature') ?? '', 'whsec');
  res.json({ received: event.id });
});

// A client under another name is not recognised.
const payments = new Stripe(process.env.STRIPE_SECRET_KEY ?? '');
export async function chargeLateFee(customer: string) {
  return payments.charges.create({ amount: 500, currency: 'usd', customer }); // missed: idem/stripe-requires-idempotency-key (client not named *stripe)
}
