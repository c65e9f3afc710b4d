# examples/groupby.py
import shoal as faust


class BankTransfer(faust.Record):
    account_id: str
    amount: float


app = faust.App('groupby')
topic = app.topic('groupby', value_type=BankTransfer)


@app.agent(topic)
async def stream(s):
    async for transfer in s.group_by(BankTransfer.account_id):  # noqa: B007
        # transfers will now be distributed such that transfers
        # with the same account_id always arrives to the same agent
        # instance
        ...


# Not in the guide: ``python -m examples.groupby worker -l info`` runs a worker.
if __name__ == '__main__':
    app.main()
