-- public.accounts: a customer organisation; users and flows may belong to one (team visibility is per
-- account). The application's table: stepsync reads it and adds nothing to it. As it stands at head of
-- the standalone path (`stepsync migrate`); an adopted database has its own version of it.
CREATE TABLE public.accounts (
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    name        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_pkey PRIMARY KEY (id)
);
COMMENT ON TABLE public.accounts IS 'A customer organisation; users and flows may belong to one (team visibility is per account).';
COMMENT ON COLUMN public.accounts.id IS 'Primary key.';
COMMENT ON COLUMN public.accounts.name IS 'Display name of the account.';
COMMENT ON COLUMN public.accounts.created_at IS 'When the account was created.';
