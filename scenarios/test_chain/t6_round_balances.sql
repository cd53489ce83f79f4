--! revision: t6
--! down_revision: t5
--! message: Balances to the cent (the downgrade cannot bring the lost digits back)

--! upgrade
--! step: Round accounts.balance
ALTER TABLE public.accounts ALTER COLUMN balance TYPE numeric(14,2);

--! downgrade
--! step: Back to four decimals
ALTER TABLE public.accounts ALTER COLUMN balance TYPE numeric(12,4);

--! check pre: balances are not negative
SELECT id, balance FROM public.accounts WHERE balance < 0;

--! check post: no balance lost a digit
-- Fails by design on data with sub-cent balances: the digits are gone.
SELECT id, balance FROM public.accounts WHERE pg_catalog.scale(balance) < 4 AND balance <> 0;
