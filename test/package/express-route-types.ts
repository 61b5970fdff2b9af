// A compile test, checked by `npm run typecheck` (never run): `idempotency()` on a route must
// leave the route's own request types as Express infers them. It once typed `req.body` as
// `unknown` in the handler after it, so `req.body.amount` did not compile.
import express, { type Request, type Response } from 'express';
import { idempotency } from '../../src/adapters/express/index.js';
import { MemoryStore } from '../../src/stores/memory/index.js';

const app = express();
const router = express.Router();
const store = new MemoryStore();
app.use(express.json());
app.use(idempotency({ store }));

app.post('/charges', idempotency({ store, required: true }), (req, res) => {
  const amount: number = req.body.amount;
  res.status(201).json({ amount });
});

router.patch('/charges/:id', idempotency({ store }), (req, res) => {
  const id: string = req.params.id;
  // @ts-expect-error the route has no :name parameter, and the middleware must not widen params
  res.json({ id, name: req.params.name });
});

interface NewCharge {
  amount: number;
}
app.post(
  '/typed',
  idempotency({ store }),
  (req: Request<Record<string, string>, unknown, NewCharge>, res: Response) => {
    // @ts-expect-error the body is the handler's NewCharge, not widened by the middleware
    const amount: string = req.body.amount;
    res.json({ amount });
  },
);
