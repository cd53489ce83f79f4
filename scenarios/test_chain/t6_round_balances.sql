--! revision: t6
--! down_revision: t5
--! message: Balances to the cent (the downgrade cannot bring the lost digits back)

--! upgrade
--! step: Round accounts.balance
ALTER TABLE public.accounts ALTER COLUMN balance TYPE numeric(14,2);

--! downgrade
--! step: Back to four decimals
ALTER TABLE public.accounts ALTER COLUMN balance TYPE numeric(12,4);
